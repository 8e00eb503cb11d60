//go:build e2e

// Package planexit proves live what `rrguard plan --apply`'s exit status says, as docs/plan.md
// and the README promise: 1 when the API server refuses a step, 2 when a step cannot be
// judged because something cannot be reached (rrguard's webhook, which BGPPeers fail closed
// on, or the API server itself).
package planexit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	h          *harness.Harness
	rrguardBin string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if h, err = harness.Start(harness.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	if rrguardBin, err = h.Build("./cmd/rrguard"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build rrguard: %v\n", err)
		return 1
	}
	return m.Run()
}

// meshCluster creates 12 Ready Nodes with BGP addresses in zones a, b and c, the mesh on: the
// first step of rrguard's plan for it creates a BGPPeer.
func meshCluster(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for i := 0; i < 12; i++ {
		objs = append(objs, &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]interface{}{"name": fmt.Sprintf("node-%02d", i),
				"labels":      map[string]interface{}{"topology.kubernetes.io/zone": string(rune('a' + i%3))},
				"annotations": map[string]interface{}{"projectcalico.org/IPv4Address": fmt.Sprintf("10.0.0.%d/24", i+1)}},
			"status": map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Ready", "status": "True"}}},
		}})
	}
	if err := h.Create(ctx, objs); err != nil {
		t.Fatal(err)
	}
}

// planApply starts `rrguard plan --apply` on the harness's cluster.
func planApply(t *testing.T, pause string) (*exec.Cmd, *harness.LogBuffer, *harness.LogBuffer) {
	t.Helper()
	var stdout, stderr harness.LogBuffer
	cmd := exec.Command(rrguardBin, "plan", "--kubeconfig", h.Kubeconfig, "--apply", "--pause", pause)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("rrguard plan --apply did not end within 2 minutes")
		return -1
	}
}

// dryRunPeer creates a BGPPeer in dry-run and checks that it is allowed (want nil) or refused
// saying want.
func dryRunPeer(want error) error {
	probe := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
		"metadata": map[string]interface{}{"name": "probe"}, "spec": map[string]interface{}{"peerIP": "10.0.0.1", "asNumber": 64512}}}
	err := h.Client.Create(context.Background(), probe, client.DryRunAll)
	switch {
	case want == nil && err != nil:
		return fmt.Errorf("a dry-run BGPPeer is refused: %w", err)
	case want != nil && (err == nil || !strings.Contains(err.Error(), want.Error())):
		return fmt.Errorf("a dry-run BGPPeer: %v, want an error saying %q", err, want)
	}
	return nil
}

// TestRefusedStepIsExit1: an admission policy refusing BGPPeers refuses the first step.
func TestRefusedStepIsExit1(t *testing.T) {
	ctx := context.Background()
	meshCluster(ctx, t)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "planexit-no-peers"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"crd.projectcalico.org", "projectcalico.org"}, APIVersions: []string{"*"}, Resources: []string{"bgppeers"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "planexit refuses every BGPPeer"}},
		},
	}
	deny := admissionregistrationv1.Deny
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "planexit-no-peers"},
		Spec:       admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy.Name, ValidationActions: []admissionregistrationv1.ValidationAction{deny}},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := h.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{binding, policy} {
			_ = h.Client.Delete(context.Background(), o)
		}
		harness.Eventually(t, "the policy is gone", time.Minute, func() error { return dryRunPeer(nil) })
	})
	// The API server enforces a new policy once it has compiled it.
	harness.Eventually(t, "the policy refuses BGPPeers", time.Minute, func() error { return dryRunPeer(errors.New("planexit refuses")) })
	cmd, stdout, stderr := planApply(t, "0s")
	if code := exitCode(t, cmd); code != 1 || !strings.Contains(stderr.String(), "planexit refuses every BGPPeer") || !strings.Contains(stdout.String(), "0 of 12 steps applied") {
		t.Errorf("exit %d, want 1 naming the refusal\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestWebhookDownIsExit2: with rrguard's webhook configurations registered (BGPPeers fail
// closed) and no webhook answering, the API server cannot judge the first step.
func TestWebhookDownIsExit2(t *testing.T) {
	ctx := context.Background()
	meshCluster(ctx, t)
	ca, err := harness.NewCA("planexit-ca")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: rrguard's webhook was killed.
	url := fmt.Sprintf("https://127.0.0.1:%d", harness.FreePortFor(t))
	if err := h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), url, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.MutatingWebhookConfiguration{}} {
			_ = h.Client.DeleteAllOf(context.Background(), o)
		}
		harness.Eventually(t, "the webhooks are gone", time.Minute, func() error { return dryRunPeer(nil) })
	})
	harness.Eventually(t, "BGPPeers fail closed", time.Minute, func() error { return dryRunPeer(errors.New("failed calling webhook")) })
	cmd, stdout, stderr := planApply(t, "0s")
	if code := exitCode(t, cmd); code != 2 || !strings.Contains(stderr.String(), "connection refused") || !strings.Contains(stdout.String(), "0 of 12 steps applied") {
		t.Errorf("exit %d, want 2 saying the webhook's connection was refused\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestAPIServerGoneIsExit2 stops the API server while plan --apply waits between steps: the
// next step finds no one to connect to. It stops the package's API server: it runs last.
func TestAPIServerGoneIsExit2(t *testing.T) {
	ctx := context.Background()
	meshCluster(ctx, t)
	cmd, stdout, stderr := planApply(t, "3s")
	harness.Eventually(t, "step 1 applied", time.Minute, func() error {
		if !strings.Contains(stdout.String(), "step 1/12 applied") {
			return fmt.Errorf("stdout %q, stderr %q", stdout, stderr)
		}
		return nil
	})
	if err := h.Env.ControlPlane.APIServer.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 2 || !strings.Contains(stderr.String(), "connection refused") || !strings.Contains(stdout.String(), "1 of 12 steps applied") {
		t.Errorf("exit %d, want 2 saying the connection was refused\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
