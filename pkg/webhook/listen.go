package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// HTTPOptions bound what one client can hold of the webhook server. The API server gives
// rrguard's webhooks at most a few seconds (timeoutSeconds), so nothing legitimate takes
// longer than these to send a request; a client that does (a byte at a time, or never) is cut.
type HTTPOptions struct {
	// ReadHeaderTimeout bounds the TLS handshake and the request headers (connections that
	// send nothing are cut after it).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds answering one request.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next request.
	IdleTimeout time.Duration
	// EnableHTTP2 offers HTTP/2. It is off by default, as in kubebuilder's scaffold since
	// the HTTP/2 rapid-reset attacks (CVE-2023-44487, CVE-2023-39325): the API server talks
	// HTTP/1.1 to webhooks just as well.
	EnableHTTP2 bool
}

// DefaultHTTPOptions are the webhook server's bounds unless configured otherwise.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
}

func (o HTTPOptions) withDefaults() HTTPOptions {
	d := DefaultHTTPOptions()
	for _, f := range []struct{ v, def *time.Duration }{{&o.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&o.ReadTimeout, &d.ReadTimeout}, {&o.WriteTimeout, &d.WriteTimeout}, {&o.IdleTimeout, &d.IdleTimeout}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return o
}

// maxHeaderBytes bounds a request's headers (the API server sends a few hundred bytes).
const maxHeaderBytes = 64 << 10

// httpsServer is controller-runtime's webhook server with bounded clients: its DefaultServer
// sets no read or write timeout and offers HTTP/2, and lets neither be configured. Certificates
// are reloaded from CertDir by controller-runtime's certwatcher, as there.
type httpsServer struct {
	host, certDir string
	port          int
	http          HTTPOptions
	mux           *http.ServeMux

	mu      sync.Mutex
	started bool
}

var _ crwebhook.Server = (*httpsServer)(nil)

func newHTTPSServer(host string, port int, certDir string, o HTTPOptions) *httpsServer {
	return &httpsServer{host: host, port: port, certDir: certDir, http: o, mux: http.NewServeMux()}
}

func (*httpsServer) NeedLeaderElection() bool               { return false }
func (s *httpsServer) WebhookMux() *http.ServeMux           { return s.mux }
func (s *httpsServer) Register(path string, h http.Handler) { s.mux.Handle(path, h) }

func (s *httpsServer) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Start serves until ctx ends.
func (s *httpsServer) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("webhook-server")
	cw, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("serving certificate in %s: %w", s.certDir, err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			logger.Error(err, "certificate watcher stopped")
		}
	}()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate, NextProtos: []string{"http/1.1"}}
	if s.http.EnableHTTP2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	ln, err := tls.Listen("tcp", s.addr(), cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.mux,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: s.http.ReadHeaderTimeout,
		ReadTimeout:       s.http.ReadTimeout,
		WriteTimeout:      s.http.WriteTimeout,
		IdleTimeout:       s.http.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Cut clients (handshake timeouts, 2,000 at a time under attack) are debug lines, not
		// errors on standard error.
		ErrorLog: stdlog.New(debugWriter{logger}, "", 0),
	}
	if !s.http.EnableHTTP2 {
		// A non-nil empty map keeps net/http from configuring HTTP/2 on its own.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			logger.Error(err, "shut down the webhook server")
		}
	}()
	logger.Info("serving webhooks", "addr", s.addr(), "http2", s.http.EnableHTTP2)
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}

// debugWriter turns net/http's error log lines into debug log lines.
type debugWriter struct{ log logr.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartedChecker is healthy once the server accepts TLS connections.
func (s *httpsServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not been started yet")
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a reachability probe of our own listener
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
