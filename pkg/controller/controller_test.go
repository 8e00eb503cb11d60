package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rrguard/rrguard/pkg/plan"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
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

// TestReportHeld: a held zone is an Event (once per reason) and a metric set to 1 while it is
// held, gone once it is not.
func TestReportHeld(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	r := &Reconciler{Recorder: rec}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rrguard-system"}}
	cordoned := []*plan.Zone{{Name: "a", Held: "none of its 10 node(s) can be a reflector (10 cordoned)"}}
	r.reportHeld(ns, cordoned)
	r.reportHeld(ns, cordoned)
	if got := heldSeries(t); len(got) != 1 || got["a"] != 1 {
		t.Errorf("rrguard_controller_zone_held %v, want zone a at 1", got)
	}
	r.reportHeld(ns, []*plan.Zone{{Name: "a", Held: "none of its 10 node(s) can be a reflector (10 excluded (--exclude))"}})
	r.reportHeld(ns, nil)
	if got := heldSeries(t); len(got) != 0 {
		t.Errorf("rrguard_controller_zone_held %v after zone a was released, want no series", got)
	}
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	if len(got) != 2 || !strings.Contains(got[0], "ZoneHeld") || !strings.Contains(got[0], "zone a is left as it is") || !strings.Contains(got[1], "excluded") {
		t.Errorf("events %q: want one per reason", got)
	}
}

// heldSeries reads rrguard_controller_zone_held by zone.
func heldSeries(t *testing.T) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	zoneHeld.Collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		out[d.GetLabel()[0].GetValue()] = d.GetGauge().GetValue()
	}
	return out
}
