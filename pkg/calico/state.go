package calico

import (
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"

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

// State is a cluster state: every Calico Node, BGPPeer, BGPConfiguration, BGPFilter, IPPool
// and BlockAffinity, by name. A State is not changed once built. With and Without return a
// State that lays one change over its parent without copying it, so an admission decision
// costs no more than the change.
type State struct {
	nodes      map[string]*Node
	peers      map[string]*Peer
	configs    map[string]*Config
	pools      map[string]*Pool
	filters    map[string]*Filter
	affinities map[string]*Affinity
	// blocks are the IPAM blocks of each node (from affinities).
	blocks map[string][]bgp.Block

	// An overlay: parent with the object kind/name replaced by obj (nil obj: removed).
	parent *State
	kind   string
	name   string
	obj    *Object

	peer     *Peer // the overlaid BGPPeer, parsed once
	peerOnce sync.Once

	// models are the peers' models in peerNames order, made once (see peerModels); an
	// overlay that changes no BGPPeer shares its parent's.
	models     *peerModels
	modelsOnce sync.Once

	topo      *bgp.Topology // nodes only; peers, mesh and AS are filled in by Topology
	nodeIndex map[string]int
	peerNames []string
	// names are the node names, sorted (the root state's only).
	names []string
	// list is the copy of the parent's node list this overlay patched (nil: it copied
	// nothing), which Release gives back.
	list *nodeList
}

// nodeList is a copy of a node list (base) that an overlay patches at one index. Overlays
// recycle them (nodeLists): a Node change would otherwise copy the list of every node (40 KB
// at 5,000 nodes), and an admission request drops its copy at once. Released with the patch
// undone, a list is again equal to its base, so the next overlay of the same base (the
// store's snapshot, until the cluster changes) needs no copy at all.
type nodeList struct {
	nodes []*bgp.Node
	// base is the list nodes is a copy of; holding it keeps its array from being freed, so
	// that another list cannot take its address.
	base []*bgp.Node
	// of is the nodeList base is the nodes of, if any, and ofUse which use of it: a list
	// is changed between its uses, so a copy of it is one of that use only.
	of    *nodeList
	ofUse uint64
	// use counts the times the list was handed out.
	use uint64
	// patched is the index the overlay changed (len(base): it appended a node).
	patched int
}

var nodeLists sync.Pool // of *nodeList

// copyOf returns a list equal to base (the nodes of list of, if not nil), with room for one
// more node.
func copyOf(base []*bgp.Node, of *nodeList) *nodeList {
	var ofUse uint64
	if of != nil {
		ofUse = of.use
	}
	l, _ := nodeLists.Get().(*nodeList)
	switch {
	case l != nil && len(l.base) == len(base) && unsafe.SliceData(l.base) == unsafe.SliceData(base) && l.of == of && l.ofUse == ofUse:
		// Already equal to base.
	case l != nil && cap(l.nodes) > len(base):
		l.nodes = append(l.nodes[:0], base...)
	default:
		l = &nodeList{nodes: append(make([]*bgp.Node, 0, len(base)+1), base...)}
	}
	l.base, l.of, l.ofUse = base, of, ofUse
	l.use++
	l.patched = -1
	return l
}

// Release gives the node list this state copied (a Node change laid over its parent) back
// for reuse by later ones. It is for a state that only its caller holds, such as the state
// after the change an admission request asks for, once judged: neither the state, nor
// anything read from it (its Topology), nor a state laid over it may be used afterwards.
// States that copied nothing are left alone.
func (s *State) Release() {
	l := s.list
	if l == nil {
		return
	}
	s.list, s.topo = nil, nil
	switch {
	case l.patched == len(l.base):
		l.nodes = l.nodes[:len(l.base)]
	case l.patched >= 0:
		l.nodes[l.patched] = l.base[l.patched]
	}
	nodeLists.Put(l)
}

// NewState builds a state from decoded objects; a later object of the same kind and name
// replaces an earlier one.
func NewState(objs []*Object) *State {
	s := &State{nodes: make(map[string]*Node, len(objs)), peers: map[string]*Peer{}, configs: map[string]*Config{},
		pools: map[string]*Pool{}, filters: map[string]*Filter{}, affinities: map[string]*Affinity{}}
	for _, o := range objs {
		switch {
		case o.Node != nil:
			s.nodes[o.Name] = o.Node
		case o.Peer != nil:
			s.peers[o.Name] = NewPeer(o.Group, o.Peer)
		case o.Config != nil:
			s.configs[o.Name] = &Config{Group: o.Group, BGPConfiguration: o.Config}
		case o.Pool != nil:
			s.pools[o.Name] = NewPool(o.Group, o.Pool)
		case o.Filter != nil:
			s.filters[o.Name] = NewFilter(o.Group, o.Filter)
		case o.Affinity != nil:
			s.affinities[o.Name] = o.Affinity
		}
	}
	s.blocks = blocksOf(s.affinities)
	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	slices.Sort(names)
	s.names = names
	t := &bgp.Topology{Nodes: make([]*bgp.Node, len(names))}
	models(t.Nodes, names, s.nodes, s.blocks)
	s.nodeIndex = make(map[string]int, len(names))
	for i, name := range names {
		s.nodeIndex[name] = i
	}
	t.Pools, t.Filters = s.poolModels(), s.filterModels()
	s.topo = t
	s.peerNames = slices.Sorted(maps.Keys(s.peers))
	return s
}

// poolModels are the state's pools as the model takes them (those being deleted included).
func (s *State) poolModels() []bgp.Pool {
	var out []bgp.Pool
	for _, name := range s.PoolNames() {
		if p := s.Pool(name); p.Err == nil {
			out = append(out, p.Model())
		}
	}
	return append(out, s.gonePools()...)
}

// filterModels are the state's BGPFilters by name, as the model takes them.
func (s *State) filterModels() map[string]*bgp.Filter {
	var out map[string]*bgp.Filter
	for _, name := range s.FilterNames() {
		if out == nil {
			out = map[string]*bgp.Filter{}
		}
		out[name] = s.Filter(name).Model()
	}
	return out
}

// models sets out[i] to the model of nodes[names[i]] with its blocks, on every core for a
// large cluster.
func models(out []*bgp.Node, names []string, nodes map[string]*Node, blocks map[string][]bgp.Block) {
	const chunk = 4096
	if len(names) <= chunk {
		for i, name := range names {
			out[i] = nodes[name].Model()
			out[i].Blocks = blocks[name]
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for lo := range next {
				for i := lo; i < min(lo+chunk, len(names)); i++ {
					out[i] = nodes[names[i]].Model()
					out[i].Blocks = blocks[names[i]]
				}
			}
		})
	}
	for lo := 0; lo < len(names); lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
}

// With returns the state with o created or replaced.
func (s *State) With(o *Object) *State { return s.overlay(o.Kind, o.Name, o) }

// Without returns the state with the object of that kind and name removed.
func (s *State) Without(kind, name string) *State { return s.overlay(kind, name, nil) }

func (s *State) overlay(kind, name string, o *Object) *State {
	if kind == KindBlockAffinity {
		// Blocks change nodes' models: rare enough (admission never sees one) to rebuild.
		return s.rebuilt(kind, name, o)
	}
	n := &State{parent: s, kind: kind, name: name, obj: o, topo: s.topo, nodeIndex: s.nodeIndex, peerNames: s.peerNames}
	if kind != KindBGPPeer {
		n.models = s.peerModelsMemo()
	}
	switch kind {
	case KindNode:
		var node *Node
		if o != nil {
			node = o.Node
		}
		n.topo, n.nodeIndex, n.list = s.patchNode(name, node)
	case KindBGPPeer:
		exists := s.Peer(name) != nil
		switch {
		case o != nil && !exists:
			n.peerNames = append(slices.Clone(s.peerNames), name)
			slices.Sort(n.peerNames)
		case o == nil && exists:
			n.peerNames = slices.DeleteFunc(slices.Clone(s.peerNames), func(x string) bool { return x == name })
		}
	}
	return n
}

// Flat returns a root state equal to s, whose lookups no longer walk s's overlays: the
// root's node map with the Nodes the overlays changed written into a copy, everything else
// shared with the root. It keeps s's node topology (the same *bgp.Node values, the same
// indexes, a removed node kept in place without an address), so an analysis of s's topology
// is one of the flat state's too. Only Node overlays are flattened: ok is false, and s is
// returned, when an overlay changes anything else.
func (s *State) Flat() (flat *State, ok bool) {
	if s.parent == nil {
		return s, true
	}
	root := s
	for root.parent != nil {
		if root.kind != KindNode {
			return s, false
		}
		root = root.parent
	}
	nodes := maps.Clone(root.nodes)
	done := map[string]bool{}
	names := root.names // shared, unless a node was added or removed
	for o := s; o.parent != nil; o = o.parent {
		if done[o.name] {
			continue // a later overlay decided this node
		}
		done[o.name] = true
		_, had := root.nodes[o.name]
		if had != (o.obj != nil) {
			names = nil
		}
		if o.obj == nil {
			delete(nodes, o.name)
		} else {
			nodes[o.name] = o.obj.Node
		}
	}
	if names == nil {
		names = s.NodeNames()
	}
	return &State{
		nodes: nodes, peers: root.peers, configs: root.configs, pools: root.pools, filters: root.filters,
		affinities: root.affinities, blocks: root.blocks,
		models: s.peerModelsMemo(), topo: s.topo, nodeIndex: s.nodeIndex, peerNames: s.peerNames, names: names,
	}, true
}

// rebuilt returns a new root state: s's objects with the object of that kind and name
// replaced by o (nil: removed).
func (s *State) rebuilt(kind, name string, o *Object) *State {
	var objs []*Object
	for _, n := range s.NodeNames() {
		if kind != KindNode || n != name {
			objs = append(objs, &Object{Kind: KindNode, Name: n, Node: s.Node(n)})
		}
	}
	for _, n := range s.PeerNames() {
		if p := s.Peer(n); kind != KindBGPPeer || n != name {
			objs = append(objs, &Object{Kind: KindBGPPeer, Group: p.Group, Name: n, Peer: p.BGPPeer})
		}
	}
	for _, n := range s.ConfigNames() {
		if c := s.Config(n); kind != KindBGPConfiguration || n != name {
			objs = append(objs, &Object{Kind: KindBGPConfiguration, Group: c.Group, Name: n, Config: c.BGPConfiguration})
		}
	}
	for _, n := range s.PoolNames() {
		if p := s.Pool(n); kind != KindIPPool || n != name {
			objs = append(objs, &Object{Kind: KindIPPool, Group: p.Group, Name: n, Pool: p.IPPool})
		}
	}
	for _, n := range s.FilterNames() {
		if f := s.Filter(n); kind != KindBGPFilter || n != name {
			objs = append(objs, &Object{Kind: KindBGPFilter, Group: f.Group, Name: n, Filter: f.BGPFilter})
		}
	}
	root := s
	for root.parent != nil {
		root = root.parent
	}
	for n, a := range root.affinities {
		if kind != KindBlockAffinity || n != name {
			objs = append(objs, &Object{Kind: KindBlockAffinity, Name: n, Affinity: a})
		}
	}
	if o != nil {
		objs = append(objs, o)
	}
	return NewState(objs)
}

// Node returns the named Calico node, or nil.
func (s *State) Node(name string) *Node {
	for ; s != nil; s = s.parent {
		if s.parent == nil {
			return s.nodes[name]
		}
		if s.kind == KindNode && s.name == name {
			if s.obj == nil {
				return nil
			}
			return s.obj.Node
		}
	}
	return nil
}

// Peer returns the named BGPPeer, or nil.
func (s *State) Peer(name string) *Peer {
	for ; s != nil; s = s.parent {
		if s.parent == nil {
			return s.peers[name]
		}
		if s.kind == KindBGPPeer && s.name == name {
			if s.obj == nil {
				return nil
			}
			s.peerOnce.Do(func() { s.peer = NewPeer(s.obj.Group, s.obj.Peer) })
			return s.peer
		}
	}
	return nil
}

// Config returns the named BGPConfiguration, or nil.
func (s *State) Config(name string) *Config {
	for ; s != nil; s = s.parent {
		if s.parent == nil {
			return s.configs[name]
		}
		if s.kind == KindBGPConfiguration && s.name == name {
			if s.obj == nil {
				return nil
			}
			return &Config{Group: s.obj.Group, BGPConfiguration: s.obj.Config}
		}
	}
	return nil
}

// Pool returns the named IPPool, or nil.
func (s *State) Pool(name string) *Pool {
	for ; s != nil; s = s.parent {
		if s.parent == nil {
			return s.pools[name]
		}
		if s.kind == KindIPPool && s.name == name {
			if s.obj == nil {
				return nil
			}
			return NewPool(s.obj.Group, s.obj.Pool)
		}
	}
	return nil
}

// Filter returns the named BGPFilter, or nil.
func (s *State) Filter(name string) *Filter {
	for ; s != nil; s = s.parent {
		if s.parent == nil {
			return s.filters[name]
		}
		if s.kind == KindBGPFilter && s.name == name {
			if s.obj == nil {
				return nil
			}
			return NewFilter(s.obj.Group, s.obj.Filter)
		}
	}
	return nil
}

// PoolNames returns the IPPool names, sorted.
func (s *State) PoolNames() []string {
	return s.names_(KindIPPool, func(r *State) []string { return slices.Collect(maps.Keys(r.pools)) }, func(n string) bool { return s.Pool(n) != nil })
}

// FilterNames returns the BGPFilter names, sorted.
func (s *State) FilterNames() []string {
	return s.names_(KindBGPFilter, func(r *State) []string { return slices.Collect(maps.Keys(r.filters)) }, func(n string) bool { return s.Filter(n) != nil })
}

// Affinities returns the BlockAffinities by name (read only).
func (s *State) Affinities() map[string]*Affinity {
	for s.parent != nil {
		s = s.parent
	}
	return s.affinities
}

// Blocks returns the IPAM blocks node name holds (read only).
func (s *State) Blocks(name string) []bgp.Block {
	for s.parent != nil {
		s = s.parent
	}
	return s.blocks[name]
}

// names_ lists the names of one kind: the root's (of rootNames) and those overlays add,
// those exists keeps, sorted.
func (s *State) names_(kind string, rootNames func(*State) []string, exists func(string) bool) []string {
	root := s
	for root.parent != nil {
		root = root.parent
	}
	var names []string
	for _, name := range rootNames(root) {
		if exists(name) {
			names = append(names, name)
		}
	}
	for o := s; o.parent != nil; o = o.parent {
		// An overlay nearer s may have removed what this one set.
		if o.kind == kind && o.obj != nil && !slices.Contains(names, o.name) && exists(o.name) {
			names = append(names, o.name)
		}
	}
	slices.Sort(names)
	return names
}

// gonePools lists the pools this state's overlays delete: their blocks stay with the nodes
// that hold them (Calico does not take blocks back from nodes when a pool goes).
func (s *State) gonePools() []bgp.Pool {
	var out []bgp.Pool
	for o := s; o.parent != nil; o = o.parent {
		if o.kind != KindIPPool || o.obj != nil || s.Pool(o.name) != nil {
			continue
		}
		if p := o.parent.Pool(o.name); p != nil && p.Err == nil && !slices.ContainsFunc(out, func(g bgp.Pool) bool { return g.Name == o.name }) {
			m := p.Model()
			m.Gone = true
			out = append(out, m)
		}
	}
	return out
}

// NodeNames returns the node names, sorted.
func (s *State) NodeNames() []string {
	root := s
	for root.parent != nil {
		root = root.parent
	}
	if s == root {
		return slices.Clone(s.names)
	}
	// The root's names, with the nodes the overlays touched decided by the overlays.
	touched := map[string]bool{}
	for o := s; o.parent != nil; o = o.parent {
		if o.kind == KindNode {
			touched[o.name] = true
		}
	}
	names := make([]string, 0, len(root.names)+len(touched))
	for _, name := range root.names {
		if !touched[name] {
			names = append(names, name)
		}
	}
	for name := range touched {
		if s.Node(name) != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// PeerNames returns the BGPPeer names, sorted.
func (s *State) PeerNames() []string { return s.peerNames }

// ConfigNames returns the BGPConfiguration names, sorted.
func (s *State) ConfigNames() []string {
	return s.names_(KindBGPConfiguration, func(r *State) []string { return slices.Collect(maps.Keys(r.configs)) }, func(n string) bool { return s.Config(n) != nil })
}

// patchNode derives the topology of this state with one node replaced (nil: removed),
// without rebuilding the other nodes. A removed node stays in place as a node without
// address, which takes part in nothing: indexes stay stable.
func (s *State) patchNode(name string, node *Node) (*bgp.Topology, map[string]int, *nodeList) {
	idx := s.nodeIndex
	i, exists := idx[name]
	if node == nil && !exists {
		return s.topo, idx, nil
	}
	t := *s.topo
	l := copyOf(t.Nodes, s.list)
	t.Nodes = l.nodes
	switch {
	case node != nil && exists:
		t.Nodes[i] = node.Model()
		t.Nodes[i].Blocks = s.Blocks(name)
	case node != nil:
		i = len(t.Nodes)
		t.Nodes = append(t.Nodes, node.Model())
		t.Nodes[i].Blocks = s.Blocks(name)
		idx = maps.Clone(idx)
		idx[name] = i
	default:
		t.Nodes[i] = &bgp.Node{Name: name}
	}
	l.nodes, l.patched = t.Nodes, i
	return &t, idx, l
}

// NodeIndex returns the index of a node in Topology().Nodes (-1 if absent).
func (s *State) NodeIndex(name string) int {
	if i, ok := s.nodeIndex[name]; ok {
		return i
	}
	return -1
}

// Default returns the default BGPConfiguration, or nil.
func (s *State) Default() *Config { return s.Config(DefaultConfigName) }

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

// Topology returns the BGP model of the state: nodes in name order (nodes added by With at
// the end), peers in name order.
func (s *State) Topology() *bgp.Topology {
	t := *s.topo
	t.Mesh, t.AS = s.Mesh(), s.GlobalAS()
	// Listen ports: the default BGPConfiguration's, and node.<name> ones per node.
	t.ListenPort, t.ListenPorts = 0, nil
	for _, name := range s.ConfigNames() {
		c := s.Config(name)
		if c == nil || c.Spec.ListenPort == 0 {
			continue
		}
		switch {
		case name == DefaultConfigName:
			t.ListenPort = c.Spec.ListenPort
		case strings.HasPrefix(name, "node."):
			if t.ListenPorts == nil {
				t.ListenPorts = map[string]uint16{}
			}
			t.ListenPorts[strings.TrimPrefix(name, "node.")] = c.Spec.ListenPort
		}
	}
	t.Peers = s.peerModelsMemo().get(s)
	// The root's pools and filters (made once, in NewState) unless an overlay changes them.
	for o := s; o.parent != nil; o = o.parent {
		if o.kind == KindIPPool || o.kind == KindBGPFilter {
			t.Pools, t.Filters = s.poolModels(), s.filterModels()
			break
		}
	}
	t.MeshPassword = ""
	if d := s.Default(); d != nil && d.Spec.NodeMeshPassword != nil && d.Spec.NodeMeshPassword.SecretKeyRef != nil {
		ref := d.Spec.NodeMeshPassword.SecretKeyRef
		t.MeshPassword = bgp.PasswordSource(ref.Name, ref.Key)
	}
	return &t
}

// peerModels are the models of a state's peers, made on first use: a Node change's state
// shares them with the state before, instead of copying every peer's model into its Topology.
// Topology's readers never write them.
type peerModels struct {
	once  sync.Once
	peers []bgp.Peer
}

func (s *State) peerModelsMemo() *peerModels {
	s.modelsOnce.Do(func() {
		if s.models == nil {
			s.models = &peerModels{}
		}
	})
	return s.models
}

func (m *peerModels) get(s *State) []bgp.Peer {
	m.once.Do(func() {
		if p := s.parent; p != nil && s.kind == KindBGPPeer && s.obj != nil && len(s.peerNames) > 0 && len(p.peerNames) == len(s.peerNames) && &p.peerNames[0] == &s.peerNames[0] {
			// A BGPPeer replaced (the same names): the models before it, that one made anew.
			if i, ok := slices.BinarySearch(s.peerNames, s.name); ok {
				m.peers = slices.Clone(p.peerModelsMemo().get(p))
				m.peers[i] = s.Peer(s.name).model
				return
			}
		}
		m.peers = make([]bgp.Peer, 0, len(s.peerNames))
		for _, name := range s.peerNames {
			m.peers = append(m.peers, s.Peer(name).model)
		}
	})
	return m.peers
}

// IsReflector reports whether the node holds a cluster ID calico-node uses (Model().IsReflector
// without building the model and its label index).
func (n *Node) IsReflector() bool { return effectiveClusterID(n.ClusterID) != "" }

// HasBGPAddress reports whether the node has an IPv4 or IPv6 BGP address calico-node uses.
func (n *Node) HasBGPAddress() bool {
	return bgpAddress(n.IPv4Address, false) != "" || bgpAddress(n.IPv6Address, true) != ""
}

// Model returns the node as calico-node acts on it: invalid values ignored. Its Labels are
// the node's Kubernetes labels themselves (shared, read only) when it has no Calico labels.
func (n *Node) Model() *bgp.Node {
	labels := n.K8sLabels
	if len(n.CalicoLabels) > 0 {
		labels = n.Labels()
	}
	m := &bgp.Node{
		Name: n.Name, Labels: labels, ClusterID: effectiveClusterID(n.ClusterID),
		IPv4: bgpAddress(n.IPv4Address, false), IPv6: bgpAddress(n.IPv6Address, true),
		Ready: n.Ready == nil || *n.Ready,
	}
	m.Prepared = selector.NewLabels(m.Labels)
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
	if s.LocalASNumber != nil {
		m.LocalAS = uint32(*s.LocalASNumber)
	}
	m.Filters = s.Filters
	if s.Password != nil && s.Password.SecretKeyRef != nil {
		m.Password = bgp.PasswordSource(s.Password.SecretKeyRef.Name, s.Password.SecretKeyRef.Key)
	}
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
		m.PeerIP, m.Port = peerAddressPort(s.PeerIP)
	}
	out.model = m
	return out
}
