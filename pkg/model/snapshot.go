// Package model owns rrguard's model of a cluster: the analysed, immutable snapshot of a
// cluster state (the Calico objects, the BGP topology calico-node builds from them, and its
// analysis: classes, sessions, routes) and the snapshot after a change, derived without
// analysing the cluster again. The ways in (manifests, informers: pkg/cluster) build
// snapshots; the engine (pkg/validate) and the presentations (sessions, graph, plan) read them.
package model

import (
	"sync"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
)

// Operation is the admission operation of a change.
type Operation string

// The operations.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// UserInfo is who asked for a change (from the admission request).
type UserInfo struct {
	Username, UID string
	Groups        []string
	Extra         map[string][]string
}

// Change is one admission request: Object is nil on DELETE, Old is nil on CREATE.
type Change struct {
	Operation Operation
	Object    *calico.Object
	Old       *calico.Object
	// User and DryRun come from the admission request, for policies (nil and false offline).
	User   *UserInfo
	DryRun bool
}

// Target is the object the change is about: the new one, or the one deleted.
func (c Change) Target() *calico.Object {
	if c.Object != nil {
		return c.Object
	}
	return c.Old
}

// Snapshot is a cluster state with its BGP analysis, built once and shared by every decision
// taken against it. Nothing in it changes once built; its readers keep what they compute of
// it in Memo.
type Snapshot struct {
	State    *calico.State
	Topology *bgp.Topology
	Analysis *bgp.Analysis
	peers    []string // peer names in Topology.Peers order

	// Memo holds what readers compute once per snapshot (the engine's problem indexes, say),
	// by a key of theirs; it goes with the snapshot.
	Memo sync.Map

	reflectorsOnce   sync.Once
	reflectorClasses []int
}

// NewSnapshot analyses a state.
func NewSnapshot(s *calico.State) *Snapshot { return NewSnapshotWithin(s, bgp.DefaultBudget) }

// NewSnapshotWithin analyses a state within a budget (see bgp.Budget).
func NewSnapshotWithin(s *calico.State, b bgp.Budget) *Snapshot {
	t := s.Topology()
	return &Snapshot{State: s, Topology: t, Analysis: bgp.AnalyzeWithin(t, b), peers: s.PeerNames()}
}

// Peers returns the BGPPeer names in Topology.Peers order (the state's PeerNames: shared,
// read only).
func (s *Snapshot) Peers() []string { return s.peers }

// ReflectorClasses returns the classes of reflectors (computed once): the rules that pair
// clients with reflectors loop over these, not over every class.
func (s *Snapshot) ReflectorClasses() []int {
	s.reflectorsOnce.Do(func() {
		for c := range s.Analysis.Classes {
			if s.Analysis.Classes[c].ClusterID != "" {
				s.reflectorClasses = append(s.reflectorClasses, c)
			}
		}
	})
	return s.reflectorClasses
}

// After returns the snapshot after a change, deriving its analysis from s's: re-classifying
// only the changed node for a Node, refining the classes by the new selectors for a
// BGPPeer, keeping them for a mesh switch; IPPools and BGPFilters change every node's routes
// and are analysed afresh. Derived analyses keep s's budget.
func (s *Snapshot) After(ch Change) *Snapshot {
	state := Apply(s.State, ch)
	target := ch.Target()
	budget := s.Analysis.Budget()
	switch {
	case target == nil:
		return NewSnapshotWithin(state, budget)
	case target.Kind == calico.KindNode:
		t := state.Topology()
		i := state.NodeIndex(target.Name)
		if i < 0 {
			// Deleting a node the state does not hold: the topology is unchanged.
			return &Snapshot{State: state, Topology: t, Analysis: s.Analysis, peers: s.peers}
		}
		return &Snapshot{State: state, Topology: t, Analysis: s.Analysis.WithNode(t, i), peers: s.peers}
	case target.Kind == calico.KindBGPPeer:
		if old := s.State.Object(calico.KindBGPPeer, target.Name); ch.Object != nil && old != nil && calico.SameForBGP(old, ch.Object) {
			// Only the BGPPeer's metadata changed (labels, annotations: what kubectl apply
			// and GitOps tools write): calico-node reads its name and spec, so the topology
			// and its analysis stand. (A new analysis at 1,000 rack BGPPeers takes ~100 ms,
			// the topology of 1,000 BGPPeers ~100 µs.)
			return &Snapshot{State: state, Topology: s.Topology, Analysis: s.Analysis, peers: s.peers}
		}
		t := state.Topology()
		return &Snapshot{State: state, Topology: t, Analysis: s.Analysis.WithPeers(t), peers: state.PeerNames()}
	case target.Kind == calico.KindBGPConfiguration:
		// A new cluster AS may move nodes between classes: then a fresh analysis.
		t := state.Topology()
		if a := s.Analysis.WithConfig(t); a != nil {
			return &Snapshot{State: state, Topology: t, Analysis: a, peers: s.peers}
		}
	}
	return NewSnapshotWithin(state, budget)
}

// Within returns a snapshot of s's state whose derived analyses (the state after a change)
// and what-ifs keep to budget b: the base an admission decision derives the state after the
// change from. It shares s's analysis, not its memo.
func (s *Snapshot) Within(b bgp.Budget) *Snapshot {
	return &Snapshot{State: s.State, Topology: s.Topology, Analysis: s.Analysis.Within(b), peers: s.peers}
}

// ReleaseOver gives back what s's state copied of base's (calico.State.Release), unless s
// shares base's state: for the snapshot after a change, which only its maker holds, once done
// with it. Neither s's state nor anything read from it may be used afterwards; nil does
// nothing.
func (s *Snapshot) ReleaseOver(base *Snapshot) {
	if s != nil && s.State != base.State {
		s.State.Release()
	}
}

// WithNode returns the snapshot after node o was added or changed (o.Node set) or removed
// (o nil): the store's cheap path for the Node changes that dominate a cluster's traffic.
func (s *Snapshot) WithNode(name string, o *calico.Object) *Snapshot {
	if o == nil {
		return s.After(Change{Operation: Delete, Old: &calico.Object{Kind: calico.KindNode, Name: name}})
	}
	return s.After(Change{Operation: Update, Object: o})
}

// Flat returns s with its state flattened (calico.State.Flat): the same topology, analysis
// and memo, with lookups that no longer walk the Node changes laid over the last full build.
// ok is false when the state holds changes of other kinds (a full build is then needed).
func (s *Snapshot) Flat() (*Snapshot, bool) {
	state, ok := s.State.Flat()
	if !ok {
		return s, false
	}
	n := &Snapshot{State: state, Topology: s.Topology, Analysis: s.Analysis, peers: s.peers}
	// The memo holds what readers computed of the objects, the topology and the analysis,
	// which the flat snapshot shares.
	s.Memo.Range(func(k, v any) bool {
		n.Memo.Store(k, v)
		return true
	})
	return n, true
}

// Apply returns the state after the change.
func Apply(before *calico.State, ch Change) *calico.State {
	if ch.Operation == Delete || ch.Object == nil {
		old := ch.Old
		if old == nil {
			return before
		}
		return before.Without(old.Kind, old.Name)
	}
	return before.With(ch.Object)
}
