//go:build e2e

// Package calicoapiserver proves rrguard beside Calico's own API server, as clusters installed
// by the tigera-operator run it: projectcalico.org/v3 is not a set of CRDs there but
// calico-apiserver, an aggregated API server (bin/calico-apiserver, built from the pinned
// module) in a network namespace of its own (see test/harness's calicoapiserver.go). A v3
// write goes through kube-apiserver's proxy to calico-apiserver, whose admission chain asks
// rrguard's webhooks (read from kube-apiserver) about the projectcalico.org/v3 object; then
// calico-apiserver writes the crd.projectcalico.org/v1 object back through kube-apiserver as
// its own service account, and rrguard is asked again. calicoctl writes
// crd.projectcalico.org/v1 directly, as without calico-apiserver.
//
// Between the API servers and rrguard (in-process, webhook.NewServer) sits a proxy that
// records every AdmissionReview and rrguard's answer (record_test.go): what the tests assert
// about who asked rrguard, how often, and what it said.
//
// Linux and root only (the network namespace); live: -tags e2e, as in `make test`.
package calicoapiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	"github.com/rrguard/rrguard/test/harness/scratch"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var (
	h *harness.Harness
	// rec records every AdmissionReview the API servers send rrguard.
	rec *recorder
	// hookURL and caPEM register rrguard's webhook configurations (again after a reset).
	hookURL string
	caPEM   []byte
	// dir holds the test's files: certificates, the rrguard binary.
	dir string
	// rrguard is the webhook server.
	rrguard *webhook.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// rrguard's log (panics answered 500, with their stack) with RRGUARD_TEST_LOG set.
	logger := logr.Discard()
	if os.Getenv("RRGUARD_TEST_LOG") != "" {
		logger = zap.New(zap.WriteTo(os.Stderr))
	}
	log.SetLogger(logger)
	started := time.Now()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: test/calicoapiserver runs calico-apiserver in a network namespace: it needs root (and Linux, iproute2)")
		return 1
	}
	var err error
	if dir, err = scratch.Dir("rrguard-calicoapiserver-"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if h, err = harness.Start(harness.Options{CalicoAPIServer: true}); err != nil {
		if h != nil {
			_ = h.Stop()
		}
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer func() {
		if err := h.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the control plane:", err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startRRGuard(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start rrguard: %v\n", err)
		return 1
	}
	if err := register(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: register rrguard: %v\n", err)
		return 1
	}
	h.ResetGuard = withoutWebhooks
	fmt.Printf("control plane with calico-apiserver (PID %d, %s in network namespace %s) and rrguard ready in %s\n",
		h.CalicoAPIServer.PID, h.CalicoAPIServer.IP, h.CalicoAPIServer.Netns, time.Since(started).Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "calico-apiserver's log (last lines):\n%s\n", lastLines(h.CalicoAPIServer.Log.String(), 30))
	}
	return code
}

// startRRGuard serves rrguard in this process on 127.0.0.1, behind the recording proxy on the
// host's end of calico-apiserver's veth pair, where kube-apiserver and calico-apiserver both
// reach it.
func startRRGuard(ctx context.Context) error {
	ca, err := harness.NewCA("rrguard-calicoapiserver-test-ca")
	if err != nil {
		return err
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return err
	}
	if _, err := ca.WriteServing(certDir); err != nil {
		return err
	}
	port, err := harness.FreePort()
	if err != nil {
		return err
	}
	srv, err := webhook.NewServer(ctx, h.Config, webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir, MetricsAddr: "0", ProbeAddr: "0",
		Config: validate.DefaultConfig(), AuditDisabled: true,
	})
	if err != nil {
		return err
	}
	rrguard = srv
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	if err := harness.Poll(time.Minute, func() error {
		select {
		case err := <-done:
			return fmt.Errorf("rrguard stopped: %v", err)
		default:
		}
		if !srv.Synced() {
			return errors.New("rrguard's model is not complete yet")
		}
		return nil
	}); err != nil {
		return err
	}
	proxyCerts := filepath.Join(dir, "proxy-certs")
	if err := os.Mkdir(proxyCerts, 0o700); err != nil {
		return err
	}
	host := h.CalicoAPIServer.HostIP
	if err := ca.WriteServingFor(proxyCerts, nil, net.ParseIP(host)); err != nil {
		return err
	}
	if rec, err = startRecorder(ctx, host, proxyCerts, fmt.Sprintf("127.0.0.1:%d", port), ca.CertPEM); err != nil {
		return err
	}
	hookURL, caPEM = "https://"+rec.addr, ca.CertPEM
	return nil
}

// register installs config/webhook/webhooks.yaml, pointed at the recording proxy, and waits
// until both API servers call rrguard.
func register(ctx context.Context) error {
	if err := h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), hookURL, caPEM); err != nil {
		return err
	}
	return awaitRRGuard(ctx)
}

// awaitRRGuard waits until kube-apiserver (crd.projectcalico.org/v1) and calico-apiserver
// (projectcalico.org/v3, which reads webhook configurations through an informer of its own)
// both ask rrguard: a peer with a broken selector is refused naming selector-syntax.
func awaitRRGuard(ctx context.Context) error {
	for _, apiVersion := range []string{"crd.projectcalico.org/v1", "projectcalico.org/v3"} {
		probe := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": apiVersion, "kind": "BGPPeer",
			"metadata": map[string]any{"name": "rrguard-ready-probe"},
			"spec":     map[string]any{"peerSelector": "has(", "nodeSelector": "all()"},
		}}
		if err := harness.Poll(time.Minute, func() error {
			err := h.Client.Create(ctx, probe, client.DryRunAll)
			if err != nil && strings.Contains(err.Error(), validate.RuleSelectorSyntax) {
				return nil
			}
			return fmt.Errorf("rrguard's webhooks not active for %s (the API server answers %v)", apiVersion, err)
		}); err != nil {
			return err
		}
	}
	return nil
}

// withoutWebhooks runs a clean-up with rrguard's webhook configurations out of the way (it
// rightly refuses deleting every reflector at once) and registers them again after.
func withoutWebhooks(ctx context.Context, reset func() error) error {
	for _, obj := range []client.Object{&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{}} {
		obj.SetName("rrguard")
		if err := h.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	// Until calico-apiserver's informer sees them gone, it may still call rrguard.
	resetErr := reset()
	// A write rrguard allowed that never landed (through calico-apiserver: one its storage
	// refused after its admission chain) stays laid over rrguard's model until it expires
	// (cluster.PendingTTL; pruned at the next judgement). The next story starts from the
	// cluster, not from that.
	for deadline := time.Now().Add(cluster.PendingTTL); rrguard.Store.Pending() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if err := register(ctx); err != nil {
		return errors.Join(resetErr, err)
	}
	return resetErr
}

// lastLines returns the last n lines of text.
func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
