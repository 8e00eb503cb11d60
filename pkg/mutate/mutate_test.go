package mutate

import (
	"encoding/json"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func coreNode(labels map[string]string, annotations map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels, Annotations: annotations}}
}

func TestReflectorLabel(t *testing.T) {
	const cidKey = "projectcalico.org/RouteReflectorClusterID"
	cases := map[string]struct {
		old, node  *corev1.Node
		label      string
		wantLabels map[string]string
		wantOps    int
	}{
		"cluster ID added: label filled": {
			nil, coreNode(map[string]string{"a": "b"}, map[string]string{cidKey: "1.0.0.1"}), "route-reflector",
			map[string]string{"a": "b", "route-reflector": "true"}, 1},
		"no labels at all": {
			nil, coreNode(nil, map[string]string{cidKey: "1.0.0.1"}), "route-reflector",
			map[string]string{"route-reflector": "true"}, 1},
		"user value kept": {
			nil, coreNode(map[string]string{"route-reflector": "yes"}, map[string]string{cidKey: "1.0.0.1"}), "route-reflector",
			map[string]string{"route-reflector": "yes"}, 0},
		"label in projectcalico.org/labels counts": {
			nil, coreNode(nil, map[string]string{cidKey: "1.0.0.1", "projectcalico.org/labels": `{"route-reflector":"true"}`}), "route-reflector",
			nil, 0},
		"invalid cluster ID: no label": {
			nil, coreNode(nil, map[string]string{cidKey: "1.0.0.256"}), "route-reflector", nil, 0},
		"cluster ID removed: auto-filled label removed": {
			coreNode(map[string]string{"route-reflector": "true"}, map[string]string{cidKey: "1.0.0.1"}),
			coreNode(map[string]string{"route-reflector": "true", "x": "y"}, nil), "route-reflector",
			map[string]string{"x": "y"}, 1},
		"cluster ID removed: user value kept": {
			coreNode(map[string]string{"route-reflector": "rr-a"}, map[string]string{cidKey: "1.0.0.1"}),
			coreNode(map[string]string{"route-reflector": "rr-a"}, nil), "route-reflector",
			map[string]string{"route-reflector": "rr-a"}, 0},
		"label with a slash": {
			nil, coreNode(map[string]string{}, map[string]string{cidKey: "1.0.0.1"}), "example.com/rr",
			map[string]string{"example.com/rr": "true"}, 1},
		"not a reflector: nothing": {
			nil, coreNode(map[string]string{"a": "b"}, nil), "route-reflector", map[string]string{"a": "b"}, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ops := ReflectorLabel(c.old, c.node, c.label)
			if len(ops) != c.wantOps {
				t.Fatalf("got %d ops %+v, want %d", len(ops), ops, c.wantOps)
			}
			// Apply the patch the way the API server does, and check the result.
			doc, _ := json.Marshal(c.node)
			patched := doc
			if len(ops) > 0 {
				raw, _ := json.Marshal(ops)
				p, err := jsonpatch.DecodePatch(raw)
				if err != nil {
					t.Fatal(err)
				}
				if patched, err = p.Apply(doc); err != nil {
					t.Fatalf("apply %s: %v", raw, err)
				}
			}
			var got corev1.Node
			if err := json.Unmarshal(patched, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Labels) != len(c.wantLabels) {
				t.Fatalf("labels %v, want %v", got.Labels, c.wantLabels)
			}
			for k, v := range c.wantLabels {
				if got.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
				}
			}
			if a := Apply(c.node, ops, c.label); len(a.Labels) != len(got.Labels) {
				t.Errorf("Apply gives %v, the JSON patch %v", a.Labels, got.Labels)
			}
			// Idempotent: a second pass over the result changes nothing.
			if again := ReflectorLabel(c.old, &got, c.label); len(again) != 0 {
				t.Errorf("second pass patches again: %+v", again)
			}
		})
	}
}
