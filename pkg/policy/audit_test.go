package policy

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/rrguard/rrguard/pkg/policy/policytest"
)

// auditObjects are the inputs of an audit of n nodes and one BGPPeer.
func auditObjects(n int) []*Input {
	var ins []*Input
	for i := range n {
		ins = append(ins, &Input{Operation: OperationAudit, Kind: "Node", Object: map[string]any{
			"metadata": map[string]any{"name": fmt.Sprintf("n%d", i), "labels": map[string]string{"zone": fmt.Sprint(i % 3)}}}})
	}
	return append(ins, &Input{Operation: OperationAudit, Kind: "BGPPeer", Group: "crd.projectcalico.org", Object: map[string]any{
		"metadata": map[string]any{"name": "p"}, "spec": map[string]any{"peerIP": "10.0.0.1"}}})
}

// TestAuditSetLikeEachObject: a policy's audit set gives exactly what its deny and warn sets
// give object by object (order included); an audit set that is not a list of results on
// objects of the state is not trusted: the policy is evaluated object by object.
func TestAuditSetLikeEachObject(t *testing.T) {
	const perObject = `
deny contains {"msg": sprintf("%s in zone 1", [input.object.metadata.name]), "field": "metadata.labels"} if {
	input.kind == "Node"
	input.object.metadata.labels.zone == "1"
}

deny contains "peerIP" if input.object.spec.peerIP

warn contains "b" if input.kind == "Node"

warn contains "a" if input.kind == "Node"
`
	cases := map[string]struct {
		audit   string
		batched bool // the audit set is used
	}{
		"exact": {`
audit contains {"kind": "Node", "name": o.metadata.name, "deny": {"msg": sprintf("%s in zone 1", [o.metadata.name]), "field": "metadata.labels"}} if {
	some o in input.objects.Node
	o.metadata.labels.zone == "1"
}

audit contains {"kind": "BGPPeer", "name": o.metadata.name, "deny": "peerIP"} if {
	some o in input.objects.BGPPeer
	o.spec.peerIP
}

audit contains {"kind": "Node", "name": o.metadata.name, "warn": w} if {
	some o in input.objects.Node
	some w in ["a", "b"]
}
`, true},
		"unknown object": {`audit contains {"kind": "Node", "name": "ghost", "deny": "x"}`, false},
		"no result":      {`audit contains {"kind": "Node", "name": "n1", "note": "x"}`, false},
		"bad result":     {`audit contains {"kind": "Node", "name": "n1", "deny": 42}`, false},
		"not an object":  {`audit contains "n1"`, false},
		"fails":          {`audit contains {"kind": "Node", "name": "n1", "deny": x} if x := to_number("n1")`, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			set, err := Load(Options{NoShipped: true, Dirs: []string{policytest.Dir(t, map[string]string{"p.rego": "package rrguard.policies.p\n\nimport rego.v1\n" + perObject + c.audit})}})
			if err != nil {
				t.Fatal(err)
			}
			if !set.Policy("p").Audits() {
				t.Fatal("the policy defines audit")
			}
			b := set.Bind(map[string]any{}, nil)
			ins := auditObjects(30)
			want := b.EvalEach(context.Background(), ins)
			if got := b.EvalAll(context.Background(), ins); !reflect.DeepEqual(got, want) {
				t.Fatalf("EvalAll %v\nEvalEach %v", got, want)
			}
			if len(want[1]) != 3 || len(want[30]) != 1 {
				t.Errorf("results on n1: %v, on the peer: %v", want[1], want[30])
			}
			b = set.Bind(map[string]any{}, nil)
			b.batch.once.Do(b.prepareBatch)
			res := make([][]Result, len(ins))
			if err := b.evalAudit(context.Background(), 0, newAuditState(convert(ins)), res); (err == nil) != c.batched {
				t.Errorf("audit set used: %v (%v)", err == nil, err)
			}
		})
	}
}
