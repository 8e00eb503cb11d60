//go:build e2e

package harnesscheck

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/pkg/calico"
)

// refusedWithoutWebhook lists the steps ("scenario/step name") that the API server (CRD
// schema) or calicoctl refuse on their own, with a piece of the refusal they print. Without
// rrguard every other step is allowed, whatever the scenario expects of rrguard. None of the
// scenarios has such a step yet; TestWithoutWebhook shows what they refuse.
var refusedWithoutWebhook = map[string]string{}

// TestScenariosWithoutWebhook plays every scenario (scenario.Dirs) with no webhook registered: each step
// reaches the API server the way a user sends it and its object round-trips through the real
// API (the Calico CRDs of both groups, core Nodes including nodes/status writes).
func TestScenariosWithoutWebhook(t *testing.T) {
	scenarios, err := scenario.LoadDirs(scenario.Dirs(h.RootDir))
	if err != nil {
		t.Fatal(err)
	}
	runner := &live.Runner{H: h}
	for _, s := range scenarios {
		t.Run(s.Name, func(t *testing.T) {
			observations, err := runner.Run(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range observations {
				key := s.Name + "/" + o.Step.Name
				if want, listed := refusedWithoutWebhook[key]; listed {
					if o.Allowed || !strings.Contains(o.Message, want) {
						t.Errorf("step %d (%s): %s: want refused by the API server or calicoctl with %q, got allowed=%v %q",
							o.Index, o.Step.Name, o.Command, want, o.Allowed, o.Message)
					}
					checkUnchanged(t, o)
					continue
				}
				if !o.Allowed {
					t.Errorf("step %d (%s): %s: refused without a webhook (if the API server or calicoctl refuse it on their own, list it in refusedWithoutWebhook): %s",
						o.Index, o.Step.Name, o.Command, o.Message)
					continue
				}
				if len(o.Warnings) > 0 {
					t.Errorf("step %d (%s): warnings without a webhook: %q", o.Index, o.Step.Name, o.Warnings)
				}
				checkRoundTrip(t, o)
			}
		})
	}
}

// checkRoundTrip checks that an allowed step's object is stored as sent.
func checkRoundTrip(t *testing.T, o live.Observation) {
	t.Helper()
	obj, where := o.Step.Object, fmt.Sprintf("step %d (%s): %s", o.Index, o.Step.Name, o.Command)
	if o.Step.Do == "delete" {
		if o.Stored != nil {
			t.Errorf("%s: %s %q still exists", where, obj.GetKind(), obj.GetName())
		}
		return
	}
	if o.Stored == nil {
		t.Errorf("%s: %s %q not found afterwards", where, obj.GetKind(), obj.GetName())
		return
	}
	switch {
	case obj.GetAPIVersion() == "projectcalico.org/v3" && obj.GetKind() == "Node":
		checkCalicoNode(t, where, o)
	case obj.GetAPIVersion() == "v1" && obj.GetKind() == "Node":
		for _, field := range []string{"labels", "annotations"} {
			want, _, _ := unstructured.NestedStringMap(obj.Object, "metadata", field)
			got, _, _ := unstructured.NestedStringMap(o.Stored.Object, "metadata", field)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s %s=%q, want %q", where, field, k, got[k], v)
				}
			}
		}
	default:
		// The CRD may default fields (BGPConfiguration.spec.serviceLoadBalancerAggregation);
		// everything sent must be kept, nothing pruned or changed.
		stored := leaves(o.Stored.Object["spec"], "spec")
		for path, want := range leaves(obj.Object["spec"], "spec") {
			if got, ok := stored[path]; !ok || got != want {
				t.Errorf("%s: stored %s = %v, want %v", where, path, got, want)
			}
		}
	}
}

// checkCalicoNode checks a v3 Node step against the core Node it was stored on: the BGP fields
// are in the projectcalico.org annotations exactly as pkg/calico says calicoctl (or kubectl
// annotate/label) writes them. (That calicoctl writes nodes/status is shown by
// TestRunnerObservesAdmission.)
func checkCalicoNode(t *testing.T, where string, o live.Observation) {
	t.Helper()
	before, err := live.CoreNode(o.Before)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := live.CoreNode(o.Stored)
	if err != nil {
		t.Fatal(err)
	}
	update := calico.NodeUpdateCalicoctl
	if o.Step.Via == "kubectl" {
		update = calico.NodeUpdateKubectl
	}
	want, err := update(before, o.Step.Object)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(stored.Annotations, want.Annotations) {
		t.Errorf("%s: annotations\n got %v\nwant %v (pkg/calico)", where, stored.Annotations, want.Annotations)
	}
	if !maps.Equal(stored.Labels, want.Labels) {
		t.Errorf("%s: labels\n got %v\nwant %v (pkg/calico)", where, stored.Labels, want.Labels)
	}
	id, _, _ := unstructured.NestedString(o.Step.Object.Object, "spec", "bgp", "routeReflectorClusterID")
	if got := stored.Annotations[calico.AnnotationClusterID]; got != id {
		t.Errorf("%s: annotation %s=%q, want %q", where, calico.AnnotationClusterID, got, id)
	}
}

// checkUnchanged checks that a refused step left its object as it was.
func checkUnchanged(t *testing.T, o live.Observation) {
	t.Helper()
	switch {
	case o.Before == nil && o.Stored == nil:
	case o.Before == nil || o.Stored == nil:
		t.Errorf("step %d (%s): refused, but the object was created or deleted", o.Index, o.Step.Name)
	case o.Before.GetResourceVersion() != o.Stored.GetResourceVersion():
		t.Errorf("step %d (%s): refused, but the object changed (resourceVersion %s -> %s)",
			o.Index, o.Step.Name, o.Before.GetResourceVersion(), o.Stored.GetResourceVersion())
	}
}

// leaves flattens a JSON value to its leaf values by path ("spec.peerSelector").
func leaves(v any, path string) map[string]string {
	out := map[string]string{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(e, path+"."+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		default:
			// Numbers compare as JSON numbers whatever their Go type.
			raw, _ := json.Marshal(v)
			out[path] = string(raw)
		}
	}
	walk(v, path)
	return out
}
