package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestWebhookDown stops the webhook, so it must run last: go test runs a package's tests in
// the order of their files' names, and this file's name sorts last. With rrguard stopped, Nodes still work (failurePolicy Ignore) and BGP resources are
// refused (failurePolicy Fail) with a message that names rrguard.
func TestWebhookDown(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, []*unstructured.Unstructured{calicoNode("down-1", "10.7.0.1")}); err != nil {
		t.Fatal(err)
	}
	stopHook()
	select {
	case <-hookDone:
	case <-time.After(30 * time.Second):
		t.Fatal("webhook did not stop")
	}
	if _, err := servedSerial(); err == nil {
		t.Fatal("webhook still serving")
	}
	var n corev1.Node
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "down-1"}, &n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now())
	if err := h.Client.Status().Update(ctx, &n); err != nil {
		t.Errorf("heartbeat with rrguard down: %v", err)
	}
	if out, ok := kubectl(t, "", "label", "node", "down-1", "team=payments"); !ok {
		t.Errorf("non-Calico label change with rrguard down: %s", out)
	}
	if out, ok := kubectl(t, "", "annotate", "node", "down-1", "projectcalico.org/ASNumber=64601"); !ok {
		t.Errorf("Node change with rrguard down must pass (failurePolicy Ignore): %s", out)
	}
	peer := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: down}\nspec: {nodeSelector: \"all()\", peerSelector: \"all()\"}\n"
	out, ok := kubectl(t, peer, "apply", "-f", "-")
	if ok {
		t.Fatalf("BGPPeer accepted with rrguard down: %s", out)
	}
	if !strings.Contains(out, "rrguard") {
		t.Errorf("the refusal does not name rrguard: %s", out)
	}
	t.Logf("with rrguard down: %s", out)
}
