package validate

import (
	"maps"
	"reflect"
	"sync"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy/policytest"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// mirrorPolicy warns on each node with its entry of data.rrguard.cluster, so that audits
// compare every entry.
const mirrorPolicy = `package rrguard.policies.mirror

import rego.v1

warn contains json.marshal(data.rrguard.cluster.nodes[input.object.metadata.name]) if input.kind == "Node"
`

// TestAuditCacheAfterChange: an audit after cluster changes, reusing the objects an earlier
// audit converted, finds exactly what an audit converting every object finds (a fresh
// engine's, and the uncached inputs' one by one); and the changes show in its findings.
func TestAuditCacheAfterChange(t *testing.T) {
	files := policytest.Custom()
	maps.Copy(files, noisyPolicies)
	files["mirror.rego"] = mirrorPolicy
	set := loadPolicies(t, 0, files)
	rules := map[string]Action{"private-asn": Deny, "reflector-per-zone": Deny, "cluster-id-scheme": Warn}
	s0 := model.NewSnapshot(calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 1200, Reflectors: 6, Zones: 3})))
	e := New(Config{Rules: rules}).WithPolicies(set)
	first := e.Audit(t.Context(), s0)
	if n := len(e.pol.objects.m); n != len(stateObjects(s0)) {
		t.Fatalf("cache holds %d objects, the state %d", n, len(stateObjects(s0)))
	}
	// A public AS number on one node (private-asn denies it), and a node removed.
	s1 := s0.WithNode("node-00100", changedNode(s0, "node-00100", "1", "63400"))
	s1 = s1.WithNode("node-00107", nil)
	got := e.Audit(t.Context(), s1)
	if n := len(e.pol.objects.m); n != len(stateObjects(s1)) {
		t.Errorf("cache holds %d objects after the change, the state %d", n, len(stateObjects(s1)))
	}
	fresh := New(Config{Rules: rules}).WithPolicies(set).Audit(t.Context(), s1)
	if !reflect.DeepEqual(got, fresh) {
		t.Fatalf("audit after a change: %d findings, a fresh engine's: %d", len(got), len(fresh))
	}
	builtin := New(Config{Rules: rules}).Audit(t.Context(), s1)
	if uncached := e.auditOneByOne(s1, builtin); !reflect.DeepEqual(got, uncached) {
		t.Fatalf("audit after a change: %d findings, uncached one by one: %d", len(got), len(uncached))
	}
	about := func(fs []Finding, rule, name string) int {
		n := 0
		for _, f := range fs {
			if f.Rule == rule && f.Object.Name == name {
				n++
			}
		}
		return n
	}
	if about(first, "private-asn", "node-00100") != 0 || about(got, "private-asn", "node-00100") != 1 {
		t.Errorf("private-asn on node-00100: %d findings before the change, %d after (want 0, 1)",
			about(first, "private-asn", "node-00100"), about(got, "private-asn", "node-00100"))
	}
	if about(first, "noisy", "node-00107") == 0 || about(got, "noisy", "node-00107") != 0 {
		t.Errorf("noisy on node-00107: %d findings before its removal, %d after (want some, 0)",
			about(first, "noisy", "node-00107"), about(got, "noisy", "node-00107"))
	}
	// The same objects analysed from scratch (the classes numbered anew), then the cluster's
	// AS number changed (every node's asNumber in the cluster data).
	s2 := model.NewSnapshot(calico.NewState(stateObjects(s1)))
	cfg := validatetest.Config(false)
	cfg.Config.Spec.ASNumber = asn(64512)
	s3 := model.NewSnapshot(s2.State.With(cfg))
	for _, s := range []*model.Snapshot{s2, s3} {
		got := e.Audit(t.Context(), s)
		if fresh := New(Config{Rules: rules}).WithPolicies(set).Audit(t.Context(), s); !reflect.DeepEqual(got, fresh) {
			t.Fatalf("audit after a change: %d findings, a fresh engine's: %d", len(got), len(fresh))
		}
	}
	// Back to the first state: the same findings as at first, also while audits of another
	// state run at the same time and share the converted objects (go test -race).
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { e.Audit(t.Context(), s1) })
	}
	if again := e.Audit(t.Context(), s0); !reflect.DeepEqual(again, first) {
		t.Errorf("audit of the first state again: %d findings, at first %d", len(again), len(first))
	}
	wg.Wait()
}
