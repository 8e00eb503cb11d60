//go:build e2e

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
	"net/url"
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
	h       *harness.Harness
	ca      *harness.CA
	certDir string
	// hook is the rrguard server the webhook configurations point at, for the whole package.
	hook *server
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
		if hook != nil {
			hook.stop()
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
	if err := h.RegisterWebhooks(context.Background(), filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), "https://"+hook.addr, ca.CertPEM); err != nil {
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
	hook, err = serve(certDir)
	return err
}

// server is an rrguard webhook server run by the test process.
type server struct {
	addr string
	stop func()
	done chan error
	srv  *webhook.Server
}

// serve starts rrguard on a free port of 127.0.0.1 with the serving certificate in certDir
// and policyDir's policies, and returns once it serves (its informer caches have synced).
func serve(certDir string) (*server, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := webhook.NewServer(ctx, h.Config, webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir, MetricsAddr: "0", ProbeAddr: "0", Config: validate.DefaultConfig(), AuditDisabled: true,
		PolicyDirs: []string{policyDir},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	s := &server{addr: fmt.Sprintf("127.0.0.1:%d", port), stop: cancel, done: make(chan error, 1), srv: srv}
	go func() { s.done <- srv.Start(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if srv.Synced() {
			if _, err := servedSerial(s.addr); err == nil {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			cancel()
			return nil, fmt.Errorf("webhook stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	return nil, fmt.Errorf("webhook not ready within a minute")
}

// zapLevel keeps the server quiet in tests unless RRGUARD_TEST_LOG is set.
func zapLevel() zapcore.Level {
	if os.Getenv("RRGUARD_TEST_LOG") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// servedSerial returns the serial number of the certificate served on addr now.
func servedSerial(addr string) (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the served certificate only
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
	if err := awaitRRGuard(ctx); err != nil {
		return fmt.Errorf("after reset: %w", err)
	}
	return resetErr
}

// awaitRRGuard waits until rrguard answers the API server, which picks up webhook
// configurations asynchronously: a peer with a broken selector is refused by rrguard, and only
// by it, naming selector-syntax (a webhook that cannot be called is refused naming rrguard too).
func awaitRRGuard(ctx context.Context) error {
	probe := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]interface{}{"name": "rrguard-ready-probe"},
		"spec":     map[string]interface{}{"peerSelector": "has(", "nodeSelector": "all()"},
	}}
	return harness.Poll(30*time.Second, func() error {
		err := h.Client.Create(ctx, probe, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), validate.RuleSelectorSyntax) {
			return nil
		}
		return fmt.Errorf("rrguard's webhooks not active (the API server answers %v)", err)
	})
}

// setCABundle replaces the CA bundle of every rrguard webhook (certificate rotation).
func setCABundle(ctx context.Context, caBundle []byte) error {
	return editWebhooks(ctx, func(cc *admissionregistrationv1.WebhookClientConfig) error {
		cc.CABundle = caBundle
		return nil
	})
}

// pointWebhooks points every rrguard webhook at the server on addr (host:port).
func pointWebhooks(ctx context.Context, addr string) error {
	return editWebhooks(ctx, func(cc *admissionregistrationv1.WebhookClientConfig) error {
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return err
		}
		u.Host = addr
		to := u.String()
		cc.URL = &to
		return nil
	})
}

// editWebhooks applies edit to the client configuration of every rrguard webhook.
func editWebhooks(ctx context.Context, edit func(*admissionregistrationv1.WebhookClientConfig) error) error {
	var m admissionregistrationv1.MutatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &m); err != nil {
		return err
	}
	for i := range m.Webhooks {
		if err := edit(&m.Webhooks[i].ClientConfig); err != nil {
			return err
		}
	}
	if err := h.Client.Update(ctx, &m); err != nil {
		return err
	}
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &v); err != nil {
		return err
	}
	for i := range v.Webhooks {
		if err := edit(&v.Webhooks[i].ClientConfig); err != nil {
			return err
		}
	}
	return h.Client.Update(ctx, &v)
}
