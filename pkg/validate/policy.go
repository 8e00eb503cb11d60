package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy"
)

// PolicySource gives the policy set to apply now: a *policy.Set, or a *policy.Watcher that
// swaps in a new set when the policy files change.
type PolicySource interface {
	Current() *policy.Set
}

// userInfo is who asked for a change as policies see it.
func userInfo(u *model.UserInfo) *policy.UserInfo {
	if u == nil {
		return nil
	}
	return &policy.UserInfo{Username: u.Username, UID: u.UID, Groups: u.Groups, Extra: u.Extra}
}

// PolicyOptions are the options rrguard loads policies with: the user's directories, the
// per-evaluation deadline (0: policy.DefaultTimeout), and the built-in rule IDs, which no
// policy may take as its name.
func PolicyOptions(dirs []string, timeout time.Duration) policy.Options {
	return policy.Options{Dirs: dirs, Timeout: timeout, Reserved: RuleIDs()}
}

// policyState is an engine's policies and the set last bound to a snapshot.
type policyState struct {
	src   PolicySource
	mu    sync.Mutex // one binding at a time
	bound atomic.Pointer[boundPolicies]
	// objects are the audited objects converted, kept from one audit to the next; nodes the
	// nodes' entries of the cluster data, from one binding to the next.
	objects objectCache
	nodes   nodeDataCache
}

// boundPolicies is a policy set bound to a snapshot's data. Snapshots never change, so the
// data is built once per snapshot (and per policy set), never per request.
type boundPolicies struct {
	set  *policy.Set
	snap *model.Snapshot
	b    *policy.Bound
}

// WithPolicies returns an engine with the same configuration that also runs the Rego
// policies of src, after the built-in rules, in Evaluate and Audit.
func (e *Engine) WithPolicies(src PolicySource) *Engine {
	c := *e
	c.pol = &policyState{src: src}
	return &c
}

// Policies returns the policy set the engine runs now (nil without policies).
func (e *Engine) Policies() *policy.Set {
	if e.pol == nil {
		return nil
	}
	return e.pol.src.Current()
}

// UnknownRules returns the rule IDs of cfg.Rules that are neither built-in rules nor policies
// of set (nil set: no policies), sorted.
func UnknownRules(cfg Config, set *policy.Set) []string {
	var out []string
	for id := range cfg.Rules {
		if RuleByID(id) != nil || (set != nil && set.Policy(id) != nil) {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// policyAction is what enforcement does with a result of policy p: the action rrguard.yaml
// sets for the policy, else the one its METADATA asks for, else deny for deny results (and
// errors), warn for warn results.
func (e *Engine) policyAction(p *policy.Policy, k policy.Kind) Action {
	a, ok := e.cfg.Rules[p.Name]
	switch {
	case ok:
	case p.Default != "":
		a = Action(p.Default)
	case k == policy.Warn:
		a = Warn
	default:
		a = Deny
	}
	if e.cfg.Enforcement == EnforcementAudit && a != Off {
		return Audit
	}
	return a
}

func (e *Engine) policyEnabled(p *policy.Policy) bool { return e.policyAction(p, policy.Deny) != Off }

// bindPolicies returns the engine's policies bound to s (nil when none runs).
func (e *Engine) bindPolicies(s *model.Snapshot) *policy.Bound {
	if e.pol == nil {
		return nil
	}
	set := e.pol.src.Current()
	if set == nil {
		return nil
	}
	if c := e.pol.bound.Load(); c != nil && c.set == set && c.snap == s {
		return c.b
	}
	e.pol.mu.Lock()
	defer e.pol.mu.Unlock()
	if c := e.pol.bound.Load(); c != nil && c.set == set && c.snap == s {
		return c.b
	}
	var b *policy.Bound
	if slices.ContainsFunc(set.Policies(), e.policyEnabled) {
		b = set.Bind(clusterData(s, &e.pol.nodes), e.policyEnabled)
	} else {
		b = set.Bind(nil, e.policyEnabled)
	}
	e.pol.bound.Store(&boundPolicies{set: set, snap: s, b: b})
	return b
}

// PrepareSnapshot binds the engine's policies to s ahead of the first request judged against
// it (the webhook calls it in the background after a cluster change). Requests judged against
// s then find the binding made; a request against another snapshot binds its own.
func (e *Engine) PrepareSnapshot(s *model.Snapshot) { e.bindPolicies(s) }

// evaluatePolicies runs the policies on an admission change, against the state before it,
// and adds their findings to the built-in ones.
func (e *Engine) evaluatePolicies(ctx context.Context, ch model.Change, before *model.Snapshot, builtin []Finding) []Finding {
	b := e.bindPolicies(before)
	if b == nil || len(b.Policies()) == 0 {
		return builtin
	}
	target := ch.Target()
	if target == nil {
		return builtin
	}
	in := &policy.Input{
		Operation: string(ch.Operation), Kind: target.Kind, Group: target.Group,
		Object: objectData(ch.Object), OldObject: objectData(ch.Old),
		UserInfo: userInfo(ch.User), DryRun: ch.DryRun, Findings: inputFindings(builtin),
	}
	return e.policyFindings(b, b.Eval(ctx, in), target, builtin)
}

// auditPolicies runs the policies once per object of the state, with operation AUDIT (in
// batches: policy.Bound.EvalAll).
func (e *Engine) auditPolicies(ctx context.Context, s *model.Snapshot, builtin []Finding) []Finding {
	b := e.bindPolicies(s)
	if b == nil || len(b.Policies()) == 0 {
		return builtin
	}
	objs, ins := auditInputs(s, builtin, &e.pol.objects)
	out := builtin
	for i, rs := range b.EvalAll(ctx, ins) {
		out = e.policyFindings(b, rs, objs[i], out)
	}
	return out
}

// auditInputs are the objects of the state and the policies' input on each in an audit: with
// each object converted already when cache is not nil (cache.converted), else as a JSON-like
// value that the evaluation converts.
func auditInputs(s *model.Snapshot, builtin []Finding, cache *objectCache) ([]*calico.Object, []*policy.Input) {
	about := map[string][]policy.Finding{}
	for _, f := range builtin {
		k := f.Object.Kind + "/" + f.Object.Name
		about[k] = append(about[k], inputFindings([]Finding{f})...)
	}
	objs := stateObjects(s)
	var conv []*policy.Converted
	if cache != nil {
		conv = cache.converted(objs)
	}
	ins := make([]*policy.Input, len(objs))
	for i, o := range objs {
		ins[i] = &policy.Input{Operation: policy.OperationAudit, Kind: o.Kind, Group: o.Group, Findings: about[o.Kind+"/"+o.Name]}
		if conv != nil && conv[i] != nil {
			ins[i].Converted = conv[i]
		} else {
			ins[i].Object = objectData(o)
		}
	}
	return objs, ins
}

// objectCache keeps each audited object converted for the policies from one audit to the
// next: after a cluster change, the new snapshot shares every unchanged object with the last
// one, and only the changed ones are converted again. It holds the objects of the last audit
// only (each audit drops the others).
type objectCache struct {
	mu sync.Mutex
	m  map[objectID]*policy.Converted
}

// objectID is an object's identity: its kind, its name, and the decoded object it was read
// from (a *calico.Node, *apiv3.BGPPeer or *apiv3.BGPConfiguration). Decoded objects are never
// modified (a change decodes a new one); snapshots share them while they are unchanged.
type objectID struct {
	kind, name string
	obj        any
}

func idOf(o *calico.Object) objectID {
	id := objectID{kind: o.Kind, name: o.Name}
	switch {
	case o.Node != nil:
		id.obj = o.Node
	case o.Peer != nil:
		id.obj = o.Peer
	case o.Config != nil:
		id.obj = o.Config
	case o.Filter != nil:
		id.obj = o.Filter
	case o.Pool != nil:
		id.obj = o.Pool
	}
	return id
}

// converted returns objs converted (objectData, then policy.Convert), reusing the last
// audit's conversions; nil for an object that cannot be converted (its evaluations report
// why) and for one with no decoded object.
func (c *objectCache) converted(objs []*calico.Object) []*policy.Converted {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*policy.Converted, len(objs))
	next := make(map[objectID]*policy.Converted, len(objs))
	for i, o := range objs {
		id := idOf(o)
		if id.obj == nil {
			continue
		}
		v, ok := c.m[id]
		if !ok {
			var err error
			if v, err = policy.Convert(objectData(o)); err != nil {
				continue
			}
		}
		next[id], out[i] = v, v
	}
	c.m = next
	return out
}

// stateObjects lists the objects of a state as Audit visits them: nodes, peers, configurations.
func stateObjects(s *model.Snapshot) []*calico.Object {
	var out []*calico.Object
	for _, name := range s.State.NodeNames() {
		n := s.State.Node(name)
		group := calico.GroupCore
		if !n.FromCore {
			group = calico.GroupV3
		}
		out = append(out, &calico.Object{Kind: calico.KindNode, Group: group, Name: name, Node: n})
	}
	for _, name := range s.State.PeerNames() {
		p := s.State.Peer(name)
		out = append(out, &calico.Object{Kind: calico.KindBGPPeer, Group: p.Group, Name: name, Peer: p.BGPPeer})
	}
	for _, name := range s.State.ConfigNames() {
		c := s.State.Config(name)
		out = append(out, &calico.Object{Kind: calico.KindBGPConfiguration, Group: c.Group, Name: name, Config: c.BGPConfiguration})
	}
	for _, name := range s.State.FilterNames() {
		f := s.State.Filter(name)
		out = append(out, &calico.Object{Kind: calico.KindBGPFilter, Group: f.Group, Name: name, Filter: f.BGPFilter})
	}
	for _, name := range s.State.PoolNames() {
		p := s.State.Pool(name)
		out = append(out, &calico.Object{Kind: calico.KindIPPool, Group: p.Group, Name: name, Pool: p.IPPool})
	}
	return out
}

func inputFindings(fs []Finding) []policy.Finding {
	out := make([]policy.Finding, len(fs))
	for i, f := range fs {
		out[i] = policy.Finding{Rule: f.Rule, Action: string(f.Action), Field: f.Field, Message: f.Message}
	}
	return out
}

// policyFindings appends the findings of policy results about object o to out.
func (e *Engine) policyFindings(b *policy.Bound, results []policy.Result, o *calico.Object, out []Finding) []Finding {
	ref := refOf(o)
	for _, r := range results {
		p := b.Policy(r.Policy)
		a := e.policyAction(p, r.Kind)
		if a == Off {
			continue
		}
		msg := r.Message
		if r.Kind == policy.Error {
			msg = fmt.Sprintf("%s (policy error; rules.%s: off disables the policy)", msg, r.Policy)
		}
		f := finding(r.Policy, ref, fieldOn(o, r.Field), msg)
		f.Action = a
		out = append(out, f)
	}
	return out
}

// fieldOn maps a field path of the v3 form policies see to where it is on the object: the
// BGP fields of a core/v1 Node live in annotations.
func fieldOn(o *calico.Object, field string) string {
	if o.Node == nil || !o.Node.FromCore {
		return field
	}
	if name, ok := strings.CutPrefix(field, "spec.bgp."); ok {
		if path := o.Node.FieldPath(name); !strings.HasSuffix(path, "[]") {
			return path
		}
	}
	return field
}
