package calico

import (
	"maps"
	"slices"
	"sort"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/selector"
)

// DefaultConfigName is the BGPConfiguration that holds the cluster-wide settings.
const DefaultConfigName = "default"

// Peer is a BGPPeer with its selectors parsed once.
type Peer struct {
	Group string
	*apiv3.BGPPeer
	// NodeSelectorErr and PeerSelectorErr are set when a selector does not parse.
	NodeSelectorErr, PeerSelectorErr error
	model                            bgp.Peer
}

// Config is a BGPConfiguration.
type Config struct {
	Group string
	*apiv3.BGPConfiguration
}

// State is a cluster state: every Calico Node, BGPPeer and BGPConfiguration, by name.
// A State is not changed once built: With and Without return new States.
type State struct {
	Nodes   map[string]*Node
	Peers   map[string]*Peer
	Configs map[string]*Config

	topo      *bgp.Topology
	nodeIndex map[string]int
}

// NewState builds a state from decoded objects; a later object of the same kind and name
// replaces an earlier one.
func NewState(objs []*Object) *State {
	s := &State{Nodes: map[string]*Node{}, Peers: map[string]*Peer{}, Configs: map[string]*Config{}}
	for _, o := range objs {
		s.put(o)
	}
	s.buildNodes()
	return s
}

func (s *State) buildNodes() {
	names := slices.Sorted(maps.Keys(s.Nodes))
	t := &bgp.Topology{Nodes: make([]bgp.Node, 0, len(names))}
	s.nodeIndex = make(map[string]int, len(names))
	for i, name := range names {
		t.Nodes = append(t.Nodes, s.Nodes[name].Model())
		s.nodeIndex[name] = i
	}
	s.topo = t
}

func (s *State) put(o *Object) {
	switch {
	case o.Node != nil:
		s.Nodes[o.Name] = o.Node
	case o.Peer != nil:
		s.Peers[o.Name] = NewPeer(o.Group, o.Peer)
	case o.Config != nil:
		s.Configs[o.Name] = &Config{Group: o.Group, BGPConfiguration: o.Config}
	}
}

// With returns the state with o created or replaced.
func (s *State) With(o *Object) *State {
	n := s.shallowCopy(o.Kind)
	n.put(o)
	if o.Node != nil {
		n.topo, n.nodeIndex = s.patchNode(o.Name, o.Node)
	}
	return n
}

// Without returns the state with the object of that kind and name removed.
func (s *State) Without(kind, name string) *State {
	n := s.shallowCopy(kind)
	switch kind {
	case KindNode:
		delete(n.Nodes, name)
		n.topo, n.nodeIndex = s.patchNode(name, nil)
	case KindBGPPeer:
		delete(n.Peers, name)
	case KindBGPConfiguration:
		delete(n.Configs, name)
	}
	return n
}

func (s *State) shallowCopy(kind string) *State {
	n := &State{Nodes: s.Nodes, Peers: s.Peers, Configs: s.Configs, topo: s.topo, nodeIndex: s.nodeIndex}
	switch kind {
	case KindNode:
		n.Nodes = maps.Clone(s.Nodes)
	case KindBGPPeer:
		n.Peers = maps.Clone(s.Peers)
	case KindBGPConfiguration:
		n.Configs = maps.Clone(s.Configs)
	}
	return n
}

// patchNode derives the topology of this state with one node replaced (nil: removed),
// without rebuilding the other nodes.
func (s *State) patchNode(name string, node *Node) (*bgp.Topology, map[string]int) {
	t := *s.topo
	idx := s.nodeIndex
	i, exists := idx[name]
	switch {
	case node != nil && exists:
		t.Nodes = slices.Clone(t.Nodes)
		t.Nodes[i] = node.Model()
	case node != nil:
		t.Nodes = append(slices.Clone(t.Nodes), node.Model())
		idx = maps.Clone(idx)
		idx[name] = len(t.Nodes) - 1
	case exists:
		t.Nodes = slices.Delete(slices.Clone(t.Nodes), i, i+1)
		idx = make(map[string]int, len(t.Nodes))
		for j := range t.Nodes {
			idx[t.Nodes[j].Name] = j
		}
	}
	return &t, idx
}

// Default returns the default BGPConfiguration, or nil.
func (s *State) Default() *Config { return s.Configs[DefaultConfigName] }

// Mesh reports whether the node-to-node mesh is on (it is unless default turns it off).
func (s *State) Mesh() bool {
	d := s.Default()
	return d == nil || d.Spec.NodeToNodeMeshEnabled == nil || *d.Spec.NodeToNodeMeshEnabled
}

// GlobalAS is the cluster AS number (64512 unless default sets one).
func (s *State) GlobalAS() uint32 {
	if d := s.Default(); d != nil && d.Spec.ASNumber != nil && uint32(*d.Spec.ASNumber) != 0 {
		return uint32(*d.Spec.ASNumber)
	}
	return bgp.DefaultAS
}

// Topology returns the BGP model of the state. Nodes are in name order (with nodes added by
// With at the end).
func (s *State) Topology() *bgp.Topology {
	t := *s.topo
	t.Mesh, t.AS = s.Mesh(), s.GlobalAS()
	peerNames := make([]string, 0, len(s.Peers))
	for name := range s.Peers {
		peerNames = append(peerNames, name)
	}
	sort.Strings(peerNames)
	t.Peers = make([]bgp.Peer, 0, len(peerNames))
	for _, name := range peerNames {
		t.Peers = append(t.Peers, s.Peers[name].model)
	}
	return &t
}

// Model returns the node as calico-node acts on it: invalid values ignored.
func (n *Node) Model() bgp.Node {
	m := bgp.Node{
		Name: n.Name, Labels: n.Labels(), ClusterID: effectiveClusterID(n.ClusterID),
		IPv4: bgpAddress(n.IPv4Address, false), IPv6: bgpAddress(n.IPv6Address, true),
		Ready: n.Ready == nil || *n.Ready,
	}
	if n.ASNumber != "" {
		if as, err := ParseASN(n.ASNumber); err == nil {
			m.AS = as
		}
	}
	return m
}

// NewPeer parses a BGPPeer's selectors once.
func NewPeer(group string, p *apiv3.BGPPeer) *Peer {
	out := &Peer{Group: group, BGPPeer: p}
	s := &p.Spec
	m := bgp.Peer{Name: p.Name, Node: s.Node, AS: uint32(s.ASNumber)}
	if s.ReversePeering != nil && *s.ReversePeering == apiv3.ReversePeeringManual {
		m.ReverseManual = true
	}
	if s.NodeSelector != "" {
		sel, err := selector.Parse(s.NodeSelector)
		out.NodeSelectorErr = err
		m.NodeSelector = &sel
	}
	switch {
	case s.LocalWorkloadSelector != "":
		// Peers with workloads on the node carry no node-to-node routes.
	case s.PeerSelector != "":
		sel, err := selector.Parse(s.PeerSelector)
		out.PeerSelectorErr = err
		m.PeerSelector = &sel
	case s.PeerIP != "":
		m.PeerIP = peerAddress(s.PeerIP)
	}
	out.model = m
	return out
}
