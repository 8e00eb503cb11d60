package calico

// Object returns the named BGPPeer, BGPConfiguration, BGPFilter or IPPool as the state
// holds it, or nil (for a Node too): what an update of it would carry as its old object.
func (s *State) Object(kind, name string) *Object {
	o := &Object{Kind: kind, Name: name}
	switch kind {
	case KindBGPPeer:
		if p := s.Peer(name); p != nil {
			o.Group, o.Peer = p.Group, p.BGPPeer
			return o
		}
	case KindBGPConfiguration:
		if c := s.Config(name); c != nil {
			o.Group, o.Config = c.Group, c.BGPConfiguration
			return o
		}
	case KindBGPFilter:
		if f := s.Filter(name); f != nil {
			o.Group, o.Filter = f.Group, f.BGPFilter
			return o
		}
	case KindIPPool:
		if p := s.Pool(name); p != nil {
			o.Group, o.Pool = p.Group, p.IPPool
			return o
		}
	}
	return nil
}
