package validate

import (
	"context"
	"slices"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// Engine evaluates the built-in rules under one configuration.
type Engine struct {
	cfg Config
	pol *policyState // Rego policies (WithPolicies); nil: built-in rules only
	// everyCheck runs the checks marked model even when a change leaves the model as it was
	// (the tests' reference: skipping them must change no judgment).
	everyCheck bool
}

// New returns an engine for cfg (zero fields take their defaults).
func New(cfg Config) *Engine {
	cfg.setDefaults()
	return &Engine{cfg: cfg}
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Evaluate judges a change against the state before it. It reports what the change
// introduces (see introduced), never what was already wrong, except that a change that turns
// the node-to-node mesh off is judged on the whole resulting topology.
func (e *Engine) Evaluate(ctx context.Context, ch model.Change, before *model.Snapshot) []Finding {
	out, after := e.EvaluateAfter(ctx, ch, before)
	after.ReleaseOver(before) // the state after the change was this decision's alone
	return out
}

// EvaluateAfter is Evaluate that also returns the snapshot after the change, analysed within
// bgp.AdmissionBudget, for a caller that keeps it (the webhook lays an allowed change over the
// decisions that follow: cluster.Store.Judge). It is the caller's alone: give it back with
// ReleaseOver(before) when done with it.
func (e *Engine) EvaluateAfter(ctx context.Context, ch model.Change, before *model.Snapshot) ([]Finding, *model.Snapshot) {
	after := before.Within(bgp.AdmissionBudget).After(ch)
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
	j := &judgment{e: e, ch: &ch, whole: before.State.Mesh() && !after.State.Mesh(), sameModel: e.sameModel(ch, before, after)}
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
	target := ch.Target()
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
	return e.evaluatePolicies(ctx, ch, before, e.enforce(out)), after
}

// sameModel reports whether ch leaves before's BGP model as it was: after shares before's
// classes and sessions (bgp.Analysis.SameModel), the mesh is as it was, and, for a change to a
// Node, the node has or lacks the reflector label as before. A BGPPeer keeps the model only
// where its spec is unchanged (model.Snapshot.After then keeps the analysis): the model
// checks read the BGPPeers' specs, never their metadata. Changes to anything else always
// count as changing the model.
func (e *Engine) sameModel(ch model.Change, before, after *model.Snapshot) bool {
	if ch.Object != nil && ch.Object.Peer != nil && ch.Old != nil && ch.Old.Peer != nil {
		return after.State.Mesh() == before.State.Mesh() && after.Analysis.SameModel(before.Analysis)
	}
	if ch.Object == nil || ch.Object.Node == nil || ch.Old == nil || ch.Old.Node == nil {
		return false
	}
	_, had := ch.Old.Node.Label(e.cfg.ReflectorLabel)
	_, has := ch.Object.Node.Label(e.cfg.ReflectorLabel)
	return had == has && after.State.Mesh() == before.State.Mesh() && after.Analysis.SameModel(before.Analysis)
}

// changedField names where a change acts on the topology, for findings about the topology.
func changedField(ch model.Change) string {
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
func (e *Engine) Audit(ctx context.Context, s *model.Snapshot) []Finding {
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
