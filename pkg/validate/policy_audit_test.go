package validate

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/policy/policytest"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// auditOneByOne is the audit's policy pass as it was before batching: every policy once per
// object, each object a query of its own (policy.Bound.EvalEach).
func (e *Engine) auditOneByOne(s *model.Snapshot, builtin []Finding) []Finding {
	b := e.bindPolicies(s)
	objs, ins := auditInputs(s, builtin, nil)
	out := builtin
	for i, rs := range b.EvalEach(context.Background(), ins) {
		out = e.policyFindings(b, rs, objs[i], out)
	}
	return out
}

// noisyPolicies say something, or fail, on some objects of a generated cluster: findings on
// many nodes, built-in errors, conflicts and malformed results on a few, so that batches
// hold both results and failures.
var noisyPolicies = map[string]string{
	"noisy.rego": `package rrguard.policies.noisy

import rego.v1

warn contains {"msg": sprintf("node %s ends in 7", [input.object.metadata.name]), "field": "spec.bgp.ipv4Address"} if {
	input.kind == "Node"
	endswith(input.object.metadata.name, "7")
}

deny contains sprintf("%s %s in %s", [input.kind, input.object.metadata.name, input.group]) if {
	endswith(input.object.metadata.name, "42")
}

deny contains "config" if input.kind == "BGPConfiguration"
`,
	"failing.rego": `package rrguard.policies.failing

import rego.v1

deny contains "never" if {
	endswith(input.object.metadata.name, "313")
	to_number(input.object.metadata.name) > 0
}

x := 1 if endswith(input.object.metadata.name, "0999")

x := 2 if endswith(input.object.metadata.name, "0999")

deny contains "conflict" if x == 3

warn contains 42 if endswith(input.object.metadata.name, "4000")
`,
}

// TestAuditBatchesLikeOneByOne: the batched audit gives exactly the findings of one query
// per object and policy, on generated clusters with the benchmarks' ten policies and
// policies that find and fail.
func TestAuditBatchesLikeOneByOne(t *testing.T) {
	files := policytest.Custom()
	for k, v := range noisyPolicies {
		files[k] = v
	}
	// The default limits: an audit's evaluations are bounded by a count of steps, not by a
	// per-evaluation deadline a loaded machine could run out of.
	set := loadPolicies(t, 0, files)
	rules := map[string]Action{"private-asn": Deny, "reflector-per-zone": Deny, "cluster-id-scheme": Warn}
	for _, l := range []validatetest.Layout{{Nodes: 5000, Reflectors: 2}, {Nodes: 1200, Reflectors: 6, Zones: 3}} {
		t.Run(fmt.Sprintf("%d-nodes-%d-zones", l.Nodes, l.Zones), func(t *testing.T) {
			s := model.NewSnapshot(calico.NewState(validatetest.Generate(l)))
			e := New(Config{Rules: rules}).WithPolicies(set)
			builtin := New(Config{Rules: rules}).Audit(t.Context(), s)
			want := e.auditOneByOne(s, append([]Finding(nil), builtin...))
			got := e.auditPolicies(t.Context(), s, append([]Finding(nil), builtin...))
			if !reflect.DeepEqual(got, want) {
				diff := map[string]int{}
				for _, f := range got {
					diff[f.Rule+": "+f.Message]++
				}
				for _, f := range want {
					diff[f.Rule+": "+f.Message]--
				}
				for m, n := range diff {
					if n != 0 {
						t.Logf("%+d %s", n, m)
					}
				}
				t.Fatalf("batched audit: %d findings, one by one: %d", len(got), len(want))
			}
			perRule := map[string]int{}
			for _, f := range got {
				perRule[f.Rule]++
			}
			if perRule["noisy"] < l.Nodes/10 || perRule["failing"] < 2 || perRule["private-asn"] == 0 {
				t.Errorf("findings per rule: %v", perRule)
			}
		})
	}
}

// TestAuditBatchSteps: a policy that runs out of evaluation steps on some objects reports it
// on those objects only, batched as one by one: the count starts again at each object of a
// batch, and whether an object runs out does not depend on the machine's load.
func TestAuditBatchSteps(t *testing.T) {
	set, err := policy.Load(policy.Options{Dirs: []string{policytest.Dir(t, map[string]string{"slow.rego": `package rrguard.policies.slow

import rego.v1

deny contains "never" if {
	input.kind == "Node"
	endswith(input.object.metadata.name, "3")
	some a in numbers.range(1, 300)
	some b in numbers.range(1, 300)
	a * b < 0
}

warn contains "peer" if input.kind == "BGPPeer"
`})}, MaxSteps: 20000})
	if err != nil {
		t.Fatal(err)
	}
	s := model.NewSnapshot(calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 40, Reflectors: 2})))
	e := New(Config{}).WithPolicies(set)
	got := e.auditPolicies(t.Context(), s, nil)
	if want := e.auditOneByOne(s, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("batched: %+v\none by one: %+v", got, want)
	}
	// node-00003, -00013, -00023, -00033 run out; two peers warn.
	if len(got) != 4+2 || !strings.Contains(got[0].Message, "did not finish within 20000 evaluation steps") || got[0].Object.Name != "node-00003" {
		t.Errorf("%d findings: %+v", len(got), got)
	}
}

// TestPrepareSnapshot: a snapshot prepared in the background is the binding requests use.
func TestPrepareSnapshot(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	e := New(Config{}).WithPolicies(set)
	s := seedState(t, "false")
	e.PrepareSnapshot(s)
	c := e.pol.bound.Load()
	if c == nil || c.snap != s || e.bindPolicies(s) != c.b {
		t.Error("the prepared binding is not the one requests get")
	}
	New(Config{}).PrepareSnapshot(s) // without policies: nothing to do
}
