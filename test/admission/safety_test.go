//go:build e2e

package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rrguard/rrguard/test/harness"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// requests returns how many admission requests rrguard has answered, from its metrics.
func requests(t *testing.T) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "rrguard_admission_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += counter(m)
		}
	}
	return total
}

func counter(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

func calicoNode(name, ip string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]interface{}{"name": name, "labels": map[string]interface{}{"kubernetes.io/hostname": name},
			"annotations": map[string]interface{}{"projectcalico.org/IPv4Address": ip + "/24"}},
		"status": map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Ready", "status": "True"}}},
	}}
}

// TestOnlyCalicoChangesReachTheWebhook: heartbeats and other non-Calico Node updates are
// filtered out by the matchConditions, so they never cost an admission call.
func TestOnlyCalicoChangesReachTheWebhook(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, []*unstructured.Unstructured{calicoNode("hb-1", "10.9.0.1"), calicoNode("hb-2", "10.9.0.2")}); err != nil {
		t.Fatal(err)
	}
	before := requests(t)
	var n corev1.Node
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "hb-1"}, &n); err != nil {
		t.Fatal(err)
	}
	// A heartbeat: only the Ready condition's timestamps change (nodes/status).
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now())
	if err := h.Client.Status().Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	// Cordon: spec.unschedulable and a taint, nothing of Calico's.
	if out, ok := h.KubectlText("", "cordon", "hb-1"); !ok {
		t.Fatal(out)
	}
	if out, ok := h.KubectlText("", "taint", "node", "hb-1", "dedicated=infra:NoSchedule"); !ok {
		t.Fatal(out)
	}
	if after := requests(t); after != before {
		t.Errorf("non-Calico Node updates reached rrguard: %v requests before, %v after", before, after)
	}
	// A Calico annotation change does reach it (both webhooks), which shows the count works.
	if out, ok := h.KubectlText("", "annotate", "node", "hb-1", "projectcalico.org/ASNumber=64600"); !ok {
		t.Fatal(out)
	}
	if after := requests(t); after < before+2 {
		t.Errorf("a Calico annotation change did not reach the webhooks: %v requests before, %v after", before, after)
	}
}

// TestDryRun: a server-side dry run is judged the same and changes nothing.
func TestDryRun(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, []*unstructured.Unstructured{calicoNode("dr-1", "10.8.0.1"), calicoNode("dr-2", "10.8.0.2")}); err != nil {
		t.Fatal(err)
	}
	bad := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: dry}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(x\"}\n"
	out, ok := h.KubectlText(bad, "apply", "--dry-run=server", "-f", "-")
	if ok || !strings.Contains(out, "selector-syntax") {
		t.Errorf("dry run of a bad peer: ok=%v %s", ok, out)
	}
	out, ok = h.KubectlText("", "annotate", "--dry-run=server", "node", "dr-1", "projectcalico.org/RouteReflectorClusterID=1.0.0.1")
	if !ok {
		t.Fatalf("dry run: %s", out)
	}
	var n corev1.Node
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "dr-1"}, &n); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Annotations["projectcalico.org/RouteReflectorClusterID"]; ok {
		t.Error("a dry run changed the node")
	}
	if _, ok := n.Labels["route-reflector"]; ok {
		t.Error("a dry run auto-filled the label for real")
	}
}

// TestCertificateRotation: new serving certificates on disk are served without a restart.
func TestCertificateRotation(t *testing.T) {
	ctx := context.Background()
	old, err := servedSerial(hook.addr)
	if err != nil {
		t.Fatal(err)
	}
	next, err := harness.NewCA("rrguard-test-ca-2")
	if err != nil {
		t.Fatal(err)
	}
	// Trust both CAs while the certificate changes, as cert-manager's CA injection does.
	if err := setCABundle(ctx, append(append([]byte{}, ca.CertPEM...), next.CertPEM...)); err != nil {
		t.Fatal(err)
	}
	serial, err := next.WriteServing(certDir)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := servedSerial(hook.addr)
		if err == nil && got.Cmp(serial) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %v (old %v) 30s after the rotation, want %v (err %v)", got, old, serial, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Only the new CA now: the API server must still reach rrguard.
	if err := setCABundle(ctx, next.CertPEM); err != nil {
		t.Fatal(err)
	}
	ca = next
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	bad := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: rot}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(x\"}\n"
	if out, ok := h.KubectlText(bad, "apply", "-f", "-"); ok || !strings.Contains(out, "selector-syntax") {
		t.Errorf("after rotation the API server did not get rrguard's answer: %s", out)
	}
}
