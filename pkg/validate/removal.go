package validate

import "fmt"

// removal explains a change that takes away a reflector or a BGPPeer and thereby breaks the
// topology: the findings say what breaks, this one says which removal did it.
func (e *Engine) removal(ch Change, found []Finding) *Finding {
	broken := false
	for _, f := range found {
		switch f.Rule {
		case RuleRoutePropagation, RuleReflectorRedundancy, RuleClusterIDConsistency:
			if e.cfg.ActionFor(f.Rule) == Deny {
				broken = true
			}
		}
	}
	old := ch.Old
	if !broken || old == nil {
		return nil
	}
	var what string
	switch {
	case old.Node != nil && old.Node.Model().ClusterID != "":
		switch {
		case ch.Object == nil:
			what = fmt.Sprintf("deleting reflector node %s", old.Name)
		case ch.Object.Node.Model().ClusterID == "":
			what = fmt.Sprintf("clearing the cluster ID of reflector %s", old.Name)
		default:
			what = fmt.Sprintf("changing reflector %s", old.Name)
		}
	case old.Peer != nil && ch.Object == nil:
		what = fmt.Sprintf("deleting BGPPeer %s", old.Name)
	case old.Peer != nil:
		what = fmt.Sprintf("changing BGPPeer %s", old.Name)
	default:
		return nil
	}
	return &Finding{
		Rule: RuleReflectorRemoval, Object: refOf(old),
		Message: fmt.Sprintf("%s breaks the route-reflector topology (see the other findings): when a reflector or its peering must go, first add and peer its replacement (at least %d reflectors per client)", what, e.cfg.MinReflectors),
		key:     RuleReflectorRemoval + "|" + old.Name,
	}
}
