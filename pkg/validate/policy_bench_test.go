package validate

import (
	"maps"
	"runtime"
	"strconv"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/policy/policytest"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

var policyLayouts = []struct {
	name string
	l    validatetest.Layout
}{
	{"500-nodes-2-rr", validatetest.Layout{Nodes: 500, Reflectors: 2}},
	{"5000-nodes-2-rr", validatetest.Layout{Nodes: 5000, Reflectors: 2}},
	{"5000-nodes-3-zones-2-rr-each", validatetest.Layout{Nodes: 5000, Reflectors: 6, Zones: 3}},
}

// tenPolicies is an engine with ten Rego policies on: seven custom ones and the three shipped.
func tenPolicies(b testing.TB) *Engine {
	set, err := policy.Load(PolicyOptions([]string{policytest.Dir(b, policytest.Custom())}, 0))
	if err != nil {
		b.Fatal(err)
	}
	if n := len(set.Policies()); n != 10 {
		b.Fatalf("%d policies", n)
	}
	rules := map[string]Action{"private-asn": Deny, "reflector-per-zone": Deny, "cluster-id-scheme": Deny}
	return New(Config{Rules: rules}).WithPolicies(set)
}

// BenchmarkEvaluatePolicies is one admission decision (BenchmarkEvaluate's node label change)
// with every built-in rule and ten Rego policies, against a snapshot already bound: the
// steady state of the webhook between cluster changes.
func BenchmarkEvaluatePolicies(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			before := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			old := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed.Node.K8sLabels["team"] = "payments"
			e := tenPolicies(b)
			ch := model.Change{Operation: model.Update, Object: changed, Old: old, User: &model.UserInfo{Username: "alice", Groups: []string{"netops"}}}
			if fs := e.Evaluate(b.Context(), ch, before); len(fs) != 0 {
				b.Fatalf("findings: %+v", fs)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}

// BenchmarkEvaluatePoliciesPeer is a BGPPeer creation with ten policies.
func BenchmarkEvaluatePoliciesPeer(b *testing.B) {
	lt := policyLayouts[1]
	before := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
	e := tenPolicies(b)
	ch := model.Change{Operation: model.Create, Object: validatetest.Peer("extra-to-rr", "has(route-reflector)", "has(route-reflector)")}
	e.Evaluate(b.Context(), ch, before)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Evaluate(b.Context(), ch, before)
	}
}

// BenchmarkBindPolicies is the work after each change of the cluster (a new snapshot): build
// data.rrguard.cluster, load it into the store, prepare the ten queries. It reports the heap
// the bound store keeps (store-MB).
func BenchmarkBindPolicies(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			s := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := tenPolicies(b)
			set := e.pol.src.Current()
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			kept := set.Bind(clusterData(s, nil), e.policyEnabled)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			runtime.KeepAlive(kept)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				set.Bind(clusterData(s, nil), e.policyEnabled)
			}
			b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/(1<<20), "store-MB")
		})
	}
}

// BenchmarkAuditPolicies is a full audit with ten policies (seven of them define audit, their
// findings on the whole state: evaluated once; the others once per object of the kinds they
// judge), of the same snapshot again and again: the binding and every object's conversion are
// kept from the last audit (BenchmarkAuditPoliciesAfterChange is the audit after a change).
func BenchmarkAuditPolicies(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			s := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := tenPolicies(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Audit(b.Context(), s)
			}
		})
	}
}

// BenchmarkAuditPoliciesFloor is BenchmarkAuditPolicies' floor: what any audit with ten Rego
// policies does at least — the built-in audit, every object converted once to a Rego value,
// and ten evaluations of a trivial prepared query (OPA's per-evaluation floor) on them. (The
// engine keeps its conversions from one audit to the next, so an audit of the same snapshot
// again converts nothing: this floor is a first audit's.)
func BenchmarkAuditPoliciesFloor(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			s := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := New(Config{})
			q, err := rego.New(rego.Query("x := 1")).PrepareForEval(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			objs := stateObjects(s)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Audit(b.Context(), s)
				items := make([]*ast.Term, len(objs))
				for i, o := range objs {
					v, err := ast.InterfaceToValue(objectData(o))
					if err != nil {
						b.Fatal(err)
					}
					items[i] = ast.NewTerm(v)
				}
				input := ast.NewObject(ast.Item(ast.StringTerm("objects"), ast.ArrayTerm(items...)))
				for range 10 {
					if _, err := q.Eval(b.Context(), rego.EvalParsedInput(input)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// changedNode returns node name of s as a new decoded object with a label rev=rev, and asn as
// its AS number when not "".
func changedNode(s *model.Snapshot, name, rev, asn string) *calico.Object {
	n := *s.State.Node(name)
	n.K8sLabels = maps.Clone(n.K8sLabels)
	if n.K8sLabels == nil {
		n.K8sLabels = map[string]string{}
	}
	n.K8sLabels["rev"] = rev
	if asn != "" {
		n.ASNumber = asn
	}
	group := calico.GroupCore
	if !n.FromCore {
		group = calico.GroupV3
	}
	return &calico.Object{Kind: calico.KindNode, Group: group, Name: name, Node: &n}
}

// BenchmarkAuditPoliciesAfterChange is the webhook's audit after a cluster change: one node
// changed (a new decoded object, its label rev new), so a new snapshot sharing every other
// object with the last one, its policies bound (data.rrguard.cluster built and loaded, the
// queries prepared) and audited. Each iteration changes the node of the same base snapshot
// (an overlay of depth one, as the store's).
func BenchmarkAuditPoliciesAfterChange(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			base := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := tenPolicies(b)
			e.Audit(b.Context(), base)
			b.ReportAllocs()
			b.ResetTimer()
			rev := 0
			for b.Loop() {
				rev++
				s := base.WithNode("node-00100", changedNode(base, "node-00100", strconv.Itoa(rev), ""))
				e.Audit(b.Context(), s)
			}
		})
	}
}

// BenchmarkAuditPoliciesAfterChangeFloor is BenchmarkAuditPoliciesAfterChange's floor: what
// any audit with ten Rego policies does at least after one node changed — the new snapshot,
// its built-in audit, the changed object converted to a Rego value (the others' values kept
// from the last audit), and ten evaluations of a trivial prepared query on all of them.
func BenchmarkAuditPoliciesAfterChangeFloor(b *testing.B) {
	for _, lt := range policyLayouts {
		b.Run(lt.name, func(b *testing.B) {
			base := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := New(Config{})
			q, err := rego.New(rego.Query("x := 1")).PrepareForEval(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			objs := stateObjects(base)
			items := make([]*ast.Term, len(objs))
			changed := -1
			for i, o := range objs {
				v, err := ast.InterfaceToValue(objectData(o))
				if err != nil {
					b.Fatal(err)
				}
				items[i] = ast.NewTerm(v)
				if o.Name == "node-00100" && o.Kind == calico.KindNode {
					changed = i
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			rev := 0
			for b.Loop() {
				rev++
				o := changedNode(base, "node-00100", strconv.Itoa(rev), "")
				s := base.WithNode("node-00100", o)
				e.Audit(b.Context(), s)
				v, err := ast.InterfaceToValue(objectData(o))
				if err != nil {
					b.Fatal(err)
				}
				items[changed] = ast.NewTerm(v)
				input := ast.NewObject(ast.Item(ast.StringTerm("objects"), ast.ArrayTerm(items...)))
				for range 10 {
					if _, err := q.Eval(b.Context(), rego.EvalParsedInput(input)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
