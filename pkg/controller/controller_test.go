package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(mod func(n *corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"zone": "a"},
			Annotations: map[string]string{"projectcalico.org/IPv4Address": "10.0.0.1/24", "node.alpha.kubernetes.io/ttl": "0"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if mod != nil {
		mod(n)
	}
	return n
}

// TestNodeChanged: the controller wakes for what can move reflectors, not for heartbeats.
func TestNodeChanged(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(n *corev1.Node)
		want bool
	}{
		"heartbeat": {func(n *corev1.Node) {
			n.Status.Conditions[0].LastHeartbeatTime = metav1.Now()
			n.ResourceVersion = "2"
		}, false},
		"other annotation":  {func(n *corev1.Node) { n.Annotations["node.alpha.kubernetes.io/ttl"] = "30" }, false},
		"NotReady":          {func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown }, true},
		"cordoned":          {func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
		"label":             {func(n *corev1.Node) { n.Labels["zone"] = "b" }, true},
		"cluster ID":        {func(n *corev1.Node) { n.Annotations["projectcalico.org/RouteReflectorClusterID"] = "244.0.0.1" }, true},
		"Calico annotation": {func(n *corev1.Node) { delete(n.Annotations, "projectcalico.org/IPv4Address") }, true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := nodeChanged(node(nil), node(tc.mod)); got != tc.want {
				t.Errorf("nodeChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 700)
	got := truncate(long)
	if len(got) > 1000+len("…") || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncate: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if truncate("short") != "short" {
		t.Error("a short note changed")
	}
}
