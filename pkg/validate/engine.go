package validate

import (
	"context"
	"slices"
	"sync"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
)

// Engine evaluates the built-in rules under one configuration.
type Engine struct {
	cfg Config
	pol *policyState // Rego policies (WithPolicies); nil: built-in rules only
}

// New returns an engine for cfg (zero fields take their defaults).
func New(cfg Config) *Engine {
	cfg.setDefaults()
	return &Engine{cfg: cfg}
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Operation is the admission operation of a change.
type Operation string

// The operations.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Change is one admission request: Object is nil on DELETE, Old is nil on CREATE.
type Change struct {
	Operation Operation
	Object    *calico.Object
	Old       *calico.Object
	// User and DryRun come from the admission request, for policies (nil and false offline).
	User   *UserInfo
	DryRun bool
}

func (c Change) target() *calico.Object {
	if c.Object != nil {
		return c.Object
	}
	return c.Old
}

// Snapshot is a cluster state with its BGP analysis, built once and shared by every decision
// taken against it.
type Snapshot struct {
	State    *calico.State
	Topology *bgp.Topology
	Analysis *bgp.Analysis
	peers    []string // peer names in Topology.Peers order

	// The problems each check finds in this snapshot, computed when a decision against it
	// first needs them (see index).
	mu      sync.Mutex
	indexes map[indexID]*problemIndex

	reflectorsOnce   sync.Once
	reflectorClasses []int // the classes of reflectors (see reflectorClassesOf)
}

// NewSnapshot analyses a state.
func NewSnapshot(s *calico.State) *Snapshot {
	t := s.Topology()
	return &Snapshot{State: s, Topology: t, Analysis: bgp.Analyze(t), peers: peerNames(t)}
}

// after analyses the state after a change, re-classifying only the changed node when the
// change is a Node's.
func (s *Snapshot) after(ch Change) *Snapshot {
	state := Apply(s.State, ch)
	target := ch.target()
	budget := s.Analysis.Budget()
	switch {
	case target == nil:
		return newSnapshotWithin(state, budget)
	case target.Kind == calico.KindNode:
		t := state.Topology()
		i := state.NodeIndex(target.Name)
		if i < 0 {
			// Deleting a node the state does not hold: the topology is unchanged.
			return &Snapshot{State: state, Topology: t, Analysis: s.Analysis, peers: s.peers}
		}
		return &Snapshot{State: state, Topology: t, Analysis: s.Analysis.WithNode(t, i), peers: s.peers}
	case target.Kind == calico.KindBGPPeer:
		// The classes are refined by the new selectors, not rebuilt.
		t := state.Topology()
		return &Snapshot{State: state, Topology: t, Analysis: s.Analysis.WithPeers(t), peers: peerNames(t)}
	case target.Kind == calico.KindBGPConfiguration:
		// The mesh switch keeps the classes; a new cluster AS may not.
		t := state.Topology()
		if a := s.Analysis.WithConfig(t); a != nil {
			return &Snapshot{State: state, Topology: t, Analysis: a, peers: s.peers}
		}
	}
	// IPPools and BGPFilters change the routes of every node: analysed afresh.
	return newSnapshotWithin(state, budget)
}

func newSnapshotWithin(s *calico.State, b bgp.Budget) *Snapshot {
	t := s.Topology()
	return &Snapshot{State: s, Topology: t, Analysis: bgp.AnalyzeWithin(t, b), peers: peerNames(t)}
}

// within returns a snapshot of s's state whose derived analyses (the state after a change)
// and what-ifs keep to budget b: the base an admission decision derives the state after the
// change from. It shares s's analysis, not its problem indexes (the judgment reads those of s).
func (s *Snapshot) within(b bgp.Budget) *Snapshot {
	return &Snapshot{State: s.State, Topology: s.Topology, Analysis: s.Analysis.Within(b), peers: s.peers}
}

// After returns the snapshot after a change (see after): what a change allowed but not yet
// stored leaves, for the decisions that follow it.
func (s *Snapshot) After(ch Change) *Snapshot { return s.after(ch) }

// WithNode returns the snapshot after node o was added or changed (o.Node set) or removed
// (o.Node nil), re-classifying only that node: the store's cheap path for the Node changes
// that dominate a cluster's traffic.
func (s *Snapshot) WithNode(name string, o *calico.Object) *Snapshot {
	if o == nil {
		return s.after(Change{Operation: Delete, Old: &calico.Object{Kind: calico.KindNode, Name: name}})
	}
	return s.after(Change{Operation: Update, Object: o})
}

func peerNames(t *bgp.Topology) []string {
	names := make([]string, len(t.Peers))
	for i := range t.Peers {
		names[i] = t.Peers[i].Name
	}
	return names
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

// Evaluate judges a change against the state before it. It reports what the change
// introduces (see introduced), never what was already wrong, except that a change that turns
// the node-to-node mesh off is judged on the whole resulting topology.
func (e *Engine) Evaluate(ctx context.Context, ch Change, before *Snapshot) []Finding {
	after := before.within(bgp.AdmissionBudget).after(ch)
	if after.State != before.State {
		defer after.State.Release() // the state after the change is this decision's alone
	}
	var out []Finding
	if ch.Object != nil {
		old := map[string]bool{}
		if ch.Old != nil {
			for _, f := range e.objectFindings(ch.Old) {
				old[f.key] = true
			}
		}
		for _, f := range e.objectFindings(ch.Object) {
			if !old[f.key] {
				out = append(out, f)
			}
		}
	}
	j := &judgment{e: e, ch: &ch, whole: before.State.Mesh() && !after.State.Mesh()}
	topo := j.topology(after, before)
	for i := range Rules {
		if explain := Rules[i].change; explain != nil {
			if f := explain(e, ch, topo); f != nil {
				topo = append(topo, *f)
			}
		}
	}
	// A change that leaves every node at least as well off is never refused: what is still
	// wrong is said, as warnings.
	monotone := !j.whole && len(topo) > 0 && !slices.ContainsFunc(topo, func(f Finding) bool { return f.declared }) && j.monotone(before, after)
	target := ch.target()
	for _, f := range topo {
		if monotone {
			f.warnAtMost = true
		}
		// The finding is about the cluster; the object refused is the one changed, and the
		// field is the part of it that made the difference.
		if f.Object != refOf(target) || f.Field == "" {
			f.Field = changedField(ch)
		}
		f.Object = refOf(target)
		out = append(out, f)
	}
	return e.evaluatePolicies(ctx, ch, before, e.enforce(out))
}

// changedField names where a change acts on the topology, for findings about the topology.
func changedField(ch Change) string {
	switch {
	case ch.Object == nil:
		return metadataNamePath // a deletion
	case ch.Object.Node != nil:
		if ch.Old != nil && ch.Old.Node != nil && ch.Old.Node.ClusterID == ch.Object.Node.ClusterID && ch.Old.Node.ASNumber == ch.Object.Node.ASNumber {
			return labelsPath
		}
		return ch.Object.Node.FieldPath("routeReflectorClusterID")
	case ch.Object.Config != nil:
		return meshPath
	case ch.Object.Pool != nil:
		return poolChangedField(ch)
	case ch.Object.Filter != nil:
		return filterChangedField(ch)
	}
	return specPath.String()
}

// Audit reports everything wrong in a state.
func (e *Engine) Audit(ctx context.Context, s *Snapshot) []Finding {
	// One object value is reused for every object of the state (the checks keep nothing of
	// it): at 5,000 nodes, an object made per node was a sixth of an audit's allocations.
	var out []Finding
	var o calico.Object
	check := func(v calico.Object) {
		o = v
		out = append(out, e.objectFindings(&o)...)
	}
	for _, name := range s.State.NodeNames() {
		n := s.State.Node(name)
		group := calico.GroupCore
		if !n.FromCore {
			group = calico.GroupV3
		}
		check(calico.Object{Kind: calico.KindNode, Group: group, Name: name, Node: n})
	}
	for _, name := range s.State.PeerNames() {
		p := s.State.Peer(name)
		check(calico.Object{Kind: calico.KindBGPPeer, Group: p.Group, Name: name, Peer: p.BGPPeer})
	}
	for _, name := range s.State.ConfigNames() {
		c := s.State.Config(name)
		check(calico.Object{Kind: calico.KindBGPConfiguration, Group: c.Group, Name: name, Config: c.BGPConfiguration})
	}
	for _, name := range s.State.FilterNames() {
		f := s.State.Filter(name)
		check(calico.Object{Kind: calico.KindBGPFilter, Group: f.Group, Name: name, Filter: f.BGPFilter})
	}
	for _, name := range s.State.PoolNames() {
		p := s.State.Pool(name)
		check(calico.Object{Kind: calico.KindIPPool, Group: p.Group, Name: name, Pool: p.IPPool})
	}
	j := &judgment{e: e, whole: true}
	out = append(out, j.topology(s, nil)...)
	return e.auditPolicies(ctx, s, e.enforce(out))
}

// objectFindings runs the rules that look at one object alone, in catalogue order.
func (e *Engine) objectFindings(o *calico.Object) []Finding {
	var out []Finding
	for i := range Rules {
		if check := Rules[i].object; check != nil {
			out = append(out, check(e, o)...)
		}
	}
	return out
}

// enforce applies the configured action of each rule and drops the rules that are off.
func (e *Engine) enforce(in []Finding) []Finding {
	out := in[:0]
	for _, f := range in {
		f.Action = e.cfg.ActionFor(f.Rule)
		if f.warnAtMost && f.Action == Deny {
			f.Action = Warn
		}
		if f.Action != Off {
			out = append(out, f)
		}
	}
	return out
}
