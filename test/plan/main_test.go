//go:build e2e

// Package plan proves `rrguard plan --apply` and `rrguard controller` live: a real
// kube-apiserver and etcd (bin/), the Calico CRDs, rrguard's webhook binary on real TLS
// registered through config/webhook/webhooks.yaml, and the rrguard binary driving the cluster
// as a user would.
package plan

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/rrguard/rrguard/test/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	h          *harness.Harness
	rrguardBin string
	// hookURL and caPEM register the webhook again after a reset.
	hookURL string
	caPEM   []byte
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	log.SetLogger(logr.Discard())
	var err error
	if h, err = harness.Start(harness.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	dir, err := os.MkdirTemp("", "rrguard-plan-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The webhook's periodic audit writes the ClusterReport the controller test reads.
	crd := filepath.Join(h.RootDir, "config", "crd", "openreports", "openreports.io_clusterreports.yaml")
	if _, err := envtest.InstallCRDs(h.Config, envtest.CRDInstallOptions{Paths: []string{crd}, ErrorIfPathMissing: true}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: install the ClusterReport CRD: %v\n", err)
		return 1
	}
	stop, err := startWebhook(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start rrguard's webhook: %v\n", err)
		return 1
	}
	defer stop()
	if rrguardBin, err = harness.Build(h.RootDir, "./cmd/rrguard", dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build rrguard: %v\n", err)
		return 1
	}
	return m.Run()
}

// startWebhook runs the webhook binary on 127.0.0.1 with a certificate of a fresh CA and
// registers it with the API server; stop ends the process.
func startWebhook(dir string) (stop func(), err error) {
	bin, err := harness.Build(h.RootDir, "./cmd/webhook", dir)
	if err != nil {
		return nil, err
	}
	ca, err := harness.NewCA("rrguard-plan-test-ca")
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	if _, err := ca.WriteServing(certDir); err != nil {
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	probes, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--cert-dir", certDir,
		"--metrics-bind-address", "0", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probes), "--audit-interval", "1s")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	if os.Getenv("RRGUARD_TEST_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	if err := harness.Poll(time.Minute, func() error { return harness.Ready(fmt.Sprintf("http://127.0.0.1:%d/readyz", probes)) }); err != nil {
		stop()
		return nil, fmt.Errorf("webhook not ready: %w", err)
	}
	hookURL, caPEM = fmt.Sprintf("https://127.0.0.1:%d", port), ca.CertPEM
	if err := register(context.Background()); err != nil {
		stop()
		return nil, err
	}
	h.ResetGuard = withoutWebhooks
	return stop, nil
}

func register(ctx context.Context) error {
	return h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), hookURL, caPEM)
}

// withoutWebhooks runs a clean-up with rrguard's webhook configurations out of the way (it
// rightly refuses deleting every reflector at once) and registers them again after, waiting
// until the API server calls rrguard again.
func withoutWebhooks(ctx context.Context, reset func() error) error {
	for _, obj := range []client.Object{&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{}} {
		obj.SetName("rrguard")
		if err := h.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	resetErr := reset()
	if err := register(ctx); err != nil {
		return err
	}
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]any{"name": "rrguard-ready-probe"},
		"spec":     map[string]any{"peerSelector": "has(", "nodeSelector": "all()"},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := h.Client.Create(ctx, probe, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "rrguard") {
			return resetErr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rrguard's webhooks not active again after reset (last answer: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rrguard runs the rrguard binary against the test cluster.
func rrguard(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rrguardBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("rrguard %s: %v", strings.Join(args, " "), err)
	}
	return string(out), code
}
