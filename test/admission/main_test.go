// Package admission proves the webhook live: a real kube-apiserver and etcd (bin/), the real
// Calico CRDs, rrguard's server on real TLS, registered through the webhook configurations in
// config/webhook/webhooks.yaml, driven with real kubectl and calicoctl.
package admission

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var (
	h        *harness.Harness
	ca       *harness.CA
	certDir  string
	hookAddr string
	stopHook context.CancelFunc
	hookDone chan error
)

// policyDir is the server's --policy-dir, empty but while policy_test.go writes its policies.
var policyDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if h, err = harness.Start(harness.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer func() {
		if stopHook != nil {
			stopHook()
		}
		if err := h.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
		for _, dir := range []string{certDir, policyDir} {
			if dir != "" {
				os.RemoveAll(dir)
			}
		}
	}()
	if err := startWebhook(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start rrguard: %v\n", err)
		return 1
	}
	if err := h.RegisterWebhooks(context.Background(), filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), "https://"+hookAddr, ca.CertPEM); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: register rrguard: %v\n", err)
		return 1
	}
	h.ResetGuard = withoutWebhooks
	return m.Run()
}

// startWebhook serves rrguard on 127.0.0.1 with a certificate from a fresh test CA.
func startWebhook() error {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
	if ca, err = harness.NewCA("rrguard-test-ca"); err != nil {
		return err
	}
	if certDir, err = os.MkdirTemp("", "rrguard-certs-"); err != nil {
		return err
	}
	if _, err := ca.WriteServing(certDir); err != nil {
		return err
	}
	if policyDir, err = os.MkdirTemp("", "rrguard-policies-"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	hookAddr = fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	stopHook = cancel
	srv, err := webhook.NewServer(ctx, h.Config, webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir, MetricsAddr: "0", ProbeAddr: "0", Config: validate.DefaultConfig(), AuditDisabled: true,
		PolicyDirs: []string{policyDir},
	})
	if err != nil {
		return err
	}
	hookDone = make(chan error, 1)
	go func() { hookDone <- srv.Start(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if srv.Synced() {
			if _, err := servedSerial(); err == nil {
				return nil
			}
		}
		select {
		case err := <-hookDone:
			return fmt.Errorf("webhook stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("webhook not ready within a minute")
}

// zapLevel keeps the server quiet in tests unless RRGUARD_TEST_LOG is set.
func zapLevel() zapcore.Level {
	if os.Getenv("RRGUARD_TEST_LOG") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// servedSerial returns the serial number of the certificate the webhook serves now.
func servedSerial() (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", hookAddr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the served certificate only
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// withoutWebhooks runs a clean-up with rrguard's webhook configurations removed (rrguard
// rightly refuses, say, deleting every reflector at once) and registers them again after.
func withoutWebhooks(ctx context.Context, reset func() error) error {
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &m); err != nil {
		return err
	}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &v); err != nil {
		return err
	}
	if err := h.Client.Delete(ctx, &m); err != nil {
		return err
	}
	if err := h.Client.Delete(ctx, &v); err != nil {
		return err
	}
	resetErr := reset()
	m.ResourceVersion, v.ResourceVersion = "", ""
	if err := h.Client.Create(ctx, &m); err != nil {
		return err
	}
	if err := h.Client.Create(ctx, &v); err != nil {
		return err
	}
	// The API server picks up webhook configurations asynchronously: wait until rrguard
	// answers again (a peer with a broken selector is refused by rrguard, and only by it).
	probe := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]interface{}{"name": "rrguard-ready-probe"},
		"spec":     map[string]interface{}{"peerSelector": "has(", "nodeSelector": "all()"},
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

// setCABundle replaces the CA bundle of every rrguard webhook (certificate rotation).
func setCABundle(ctx context.Context, caBundle []byte) error {
	var m admissionregistrationv1.MutatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &m); err != nil {
		return err
	}
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.CABundle = caBundle
	}
	if err := h.Client.Update(ctx, &m); err != nil {
		return err
	}
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &v); err != nil {
		return err
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.CABundle = caBundle
	}
	return h.Client.Update(ctx, &v)
}

// kubectl runs kubectl against the test API server and returns stdout+stderr and success.
func kubectl(t *testing.T, stdin string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := h.Kubectl(ctx, []byte(stdin), args...)
	return strings.TrimSpace(out.Stdout + "\n" + out.Stderr), out.Err == nil
}
