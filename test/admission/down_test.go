//go:build e2e

package admission

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rrguard/rrguard/test/harness"
)

// TestWebhookDown: with rrguard down, Nodes still work (failurePolicy Ignore) and BGP resources
// are refused (failurePolicy Fail) with a message that names rrguard. It stops an rrguard of its
// own that the webhook configurations point at meanwhile, and points them back at the package's
// server when it ends: the other tests find rrguard serving whatever order they run in.
func TestWebhookDown(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, []*unstructured.Unstructured{calicoNode("down-1", "10.7.0.1")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := ca.WriteServing(dir); err != nil {
		t.Fatal(err)
	}
	down, err := serve(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.stop)
	if err := pointWebhooks(ctx, down.addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pointWebhooks(ctx, hook.addr); err != nil {
			t.Fatalf("point the webhooks back at the package's rrguard: %v", err)
		}
		if err := awaitRRGuard(ctx); err != nil {
			t.Fatal(err)
		}
	})
	down.stop()
	select {
	case <-down.done:
	case <-time.After(30 * time.Second):
		t.Fatal("webhook did not stop")
	}
	if _, err := servedSerial(down.addr); err == nil {
		t.Fatal("webhook still serving")
	}
	// The API server picks up the new address asynchronously: wait until it calls the stopped
	// server (until then the package's rrguard answers, and would allow this peer).
	probe := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: down-probe}\nspec: {nodeSelector: \"all()\", peerSelector: \"all()\"}\n"
	harness.Eventually(t, "the API server calls the stopped rrguard", 30*time.Second, func() error {
		if out, _ := h.KubectlText(probe, "apply", "--dry-run=server", "-f", "-"); !strings.Contains(out, down.addr) {
			return fmt.Errorf("kubectl apply: %s", out)
		}
		return nil
	})
	var n corev1.Node
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "down-1"}, &n); err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Now())
	if err := h.Client.Status().Update(ctx, &n); err != nil {
		t.Errorf("heartbeat with rrguard down: %v", err)
	}
	if out, ok := h.KubectlText("", "label", "node", "down-1", "team=payments"); !ok {
		t.Errorf("non-Calico label change with rrguard down: %s", out)
	}
	if out, ok := h.KubectlText("", "annotate", "node", "down-1", "projectcalico.org/ASNumber=64601"); !ok {
		t.Errorf("Node change with rrguard down must pass (failurePolicy Ignore): %s", out)
	}
	peer := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: down}\nspec: {nodeSelector: \"all()\", peerSelector: \"all()\"}\n"
	out, ok := h.KubectlText(peer, "apply", "-f", "-")
	if ok {
		t.Fatalf("BGPPeer accepted with rrguard down: %s", out)
	}
	if !strings.Contains(out, "rrguard") {
		t.Errorf("the refusal does not name rrguard: %s", out)
	}
	t.Logf("with rrguard down: %s", out)
}
