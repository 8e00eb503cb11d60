package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// writeServingCert writes a throwaway self-signed certificate for 127.0.0.1 into dir.
func writeServingCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rrguard-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{"tls.crt": {Type: "CERTIFICATE", Bytes: der}, "tls.key": {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startHTTPS serves an always-allowing review handler on a loopback port.
func startHTTPS(t *testing.T, o HTTPOptions) string {
	t.Helper()
	dir := t.TempDir()
	writeServingCert(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := newHTTPSServer("127.0.0.1", port, dir, o.withDefaults())
	rec := &countingRecorder{}
	s.Register(ValidatePath, &reviewHandler{webhook: "validate", rec: rec, limits: newInFlight(Limits{}, rec), decide: func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	ready := s.StartedChecker()
	for deadline := time.Now().Add(10 * time.Second); ready(nil) != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("webhook server not up: %v", ready(nil))
		}
	}
	return s.addr()
}

var insecure = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback test server with a throwaway certificate

// hostile is one connection of an attacker: what it sends, when it opened, and how long the
// server let it live.
type hostile struct {
	kind   string
	opened time.Time
	cut    time.Duration // 0: still open
}

// TestHostileClientsAreCut opens 2,000 connections that send nothing, 50 that send their
// headers a byte at a time and 50 that send their body a byte at a time, while a client
// keeps sending reviews: every review is answered within the API server's 3 s budget, and
// every hostile connection is cut by the server's read timeouts.
func TestHostileClientsAreCut(t *testing.T) {
	if testing.Short() {
		t.Skip("takes the default read timeouts (about 12 s)")
	}
	o := DefaultHTTPOptions()
	addr := startHTTPS(t, o)
	goroutinesBefore := runtime.NumGoroutine()
	review := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"version":"v1","kind":"Node"}}}`)
	start := time.Now()

	var mu sync.Mutex
	var conns []*hostile
	var wg sync.WaitGroup
	// watch records when the server closes c (a read returns an error; what it said first is
	// read and dropped), and stops the slow writer.
	watch := func(kind string, c net.Conn, drip func(c net.Conn) error) {
		h := &hostile{kind: kind, opened: time.Now()}
		mu.Lock()
		conns = append(conns, h)
		mu.Unlock()
		wg.Add(1)
		closed := make(chan struct{})
		go func() {
			defer wg.Done()
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
			mu.Lock()
			h.cut = time.Since(h.opened)
			mu.Unlock()
			close(closed)
		}()
		if drip != nil {
			go func() {
				for {
					select {
					case <-closed:
						return
					case <-time.After(500 * time.Millisecond):
					}
					if drip(c) != nil {
						return
					}
				}
			}()
		}
	}
	for i := 0; i < 2000; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		watch("idle", c, nil)
	}
	for i := 0; i < 50; i++ {
		c, err := tls.Dial("tcp", addr, insecure)
		if err != nil {
			t.Fatalf("slow-header connection %d: %v", i, err)
		}
		if _, err := io.WriteString(c, "POST "+ValidatePath+" HTTP/1.1\r\nHost: rrguard\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		watch("slow-header", c, func(c net.Conn) error { _, err := c.Write([]byte("a")); return err })
	}
	for i := 0; i < 50; i++ {
		c, err := tls.Dial("tcp", addr, insecure)
		if err != nil {
			t.Fatalf("slow-body connection %d: %v", i, err)
		}
		if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: rrguard\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", ValidatePath); err != nil {
			t.Fatal(err)
		}
		watch("slow-body", c, func(c net.Conn) error { _, err := c.Write([]byte(" ")); return err })
	}
	opened := time.Now()
	t.Logf("%d hostile connections open after %v", len(conns), opened.Sub(start).Round(time.Millisecond))

	// A well-behaved client keeps being answered within the budget meanwhile.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: insecure}}
	defer client.CloseIdleConnections()
	// The bounds are doubled for a busy machine (a starved accept loop cuts late); without
	// them connections live 32 s (headers) or for ever (body).
	const margin = 3 * time.Second
	slack := func(bound time.Duration) time.Duration { return 2*bound + margin }
	limit := slack(o.ReadTimeout)
	allCut := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !slices.ContainsFunc(conns, func(h *hostile) bool { return h.cut == 0 })
	}
	var slowest time.Duration
	answered := 0
	for time.Since(opened) < limit && (time.Since(opened) < o.ReadTimeout || !allCut()) {
		t0 := time.Now()
		resp, err := client.Post("https://"+addr+ValidatePath, "application/json", bytes.NewReader(review))
		if err != nil {
			t.Fatalf("a well-behaved review after %v was not answered: %v", time.Since(start).Round(time.Millisecond), err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a well-behaved review: HTTP %d", resp.StatusCode)
		}
		slowest = max(slowest, time.Since(t0))
		answered++
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d reviews answered while under attack, the slowest in %v", answered, slowest.Round(time.Millisecond))

	mu.Lock()
	bounds := map[string]time.Duration{"idle": o.ReadHeaderTimeout, "slow-header": o.ReadHeaderTimeout, "slow-body": o.ReadTimeout}
	latest := map[string]time.Duration{}
	open := map[string]int{}
	for _, h := range conns {
		if h.cut == 0 {
			open[h.kind]++
			continue
		}
		latest[h.kind] = max(latest[h.kind], h.cut)
	}
	mu.Unlock()
	for kind, bound := range bounds {
		t.Logf("%s connections: the longest lived %v (bound %v)", kind, latest[kind].Round(time.Millisecond), bound)
		if open[kind] > 0 {
			t.Errorf("%d %s connections still open after %v; the server should cut them after %v", open[kind], kind, limit, bound)
		}
		if latest[kind] > slack(bound) {
			t.Errorf("a %s connection lived %v; the server should cut it after %v", kind, latest[kind], bound)
		}
	}
	wg.Wait()
	// The server holds nothing of them any more.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore+10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore+10 {
		t.Errorf("%d goroutines after the attack, %d before", n, goroutinesBefore)
	}
}

// TestHTTP2IsOffByDefault: ALPN never picks h2 unless EnableHTTP2 is set.
func TestHTTP2IsOffByDefault(t *testing.T) {
	for _, enable := range []bool{false, true} {
		addr := startHTTPS(t, HTTPOptions{EnableHTTP2: enable})
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}) //nolint:gosec // loopback test server
		if err != nil {
			t.Fatal(err)
		}
		got := c.ConnectionState().NegotiatedProtocol
		c.Close()
		want := "http/1.1"
		if enable {
			want = "h2"
		}
		if got != want {
			t.Errorf("EnableHTTP2=%v: negotiated %q, want %q", enable, got, want)
		}
	}
}
