//go:build e2e

package calicoapiserver

import (
	"testing"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestRevertedMeshSwitchIsForgotten: the mesh is turned off through calico-apiserver and at
// once back on with calicoctl; a reflector demoted right after is judged with the mesh on.
// What calico-apiserver stores is not what rrguard admitted (the crd.projectcalico.org/v1 CRD
// defaults spec.serviceLoadBalancerAggregation, libcalico-go defaults IPPools), so rrguard
// must know the write has landed without the stored object being equal to the admitted one;
// otherwise it keeps laying the mesh switch over its model until the pending change expires.
func TestRevertedMeshSwitchIsForgotten(t *testing.T) {
	seed := loadStory(t, "filters-and-pools.yaml")
	sc := &scenario.Scenario{Name: "reverted mesh switch"}
	for _, o := range seed.Initial {
		if o.GetKind() == "Node" || o.GetKind() == "BGPPeer" {
			sc.Initial = append(sc.Initial, o)
		}
	}
	config := func(mesh bool) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"},
			"spec": map[string]any{"nodeToNodeMeshEnabled": mesh, "asNumber": int64(63400)},
		}}
	}
	sc.Steps = []scenario.Step{
		{Name: "the mesh is turned off through calico-apiserver", Do: "apply", Object: config(false), Expect: "allow"},
		{Name: "and back on with calicoctl", Do: "apply", Via: "calicoctl", Object: config(true), Expect: "allow"},
		{Name: "with the mesh on, rxgks stops being a reflector", Do: "apply", Expect: "allow", Object: &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": map[string]any{"name": "rxgks"},
			"spec": map[string]any{"bgp": map[string]any{"ipv4Address": "10.30.0.16/22"}},
		}}},
	}
	for _, p := range play(t, sc) {
		for _, d := range live.Check(p.Observation) {
			t.Errorf("step %d %q (%s): %s", p.Index, p.Step.Name, p.Command, d)
		}
		t.Logf("step %d %q: allowed=%v rules=%v; rrguard asked: %s", p.Index, p.Step.Name, p.Allowed, p.Rules, p.Reviews.validating())
	}
}
