//go:build e2e

package calicoapiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// judgement is one AdmissionReview an API server sent rrguard, and rrguard's answer.
type judgement struct {
	// Path is the webhook's path: /validate or /mutate.
	Path string
	// Group, Resource and SubResource of the request ("" group: core).
	Group, Resource, SubResource string
	Operation                    string
	Name                         string
	// User is who made the request, as the API server tells rrguard.
	User   string
	DryRun bool
	// Allowed, Status (nil when allowed) and Warnings are rrguard's answer.
	Allowed  bool
	Status   *metav1.Status
	Warnings []string
	// Patched is set when rrguard answered with a patch.
	Patched bool
}

func (j judgement) String() string {
	verdict := "allowed"
	if !j.Allowed {
		verdict = "refused"
	}
	g := j.Group
	if g == "" {
		g = "core"
	}
	res := j.Resource
	if j.SubResource != "" {
		res += "/" + j.SubResource
	}
	if len(j.Warnings) > 0 {
		verdict += fmt.Sprintf(" with %d warnings", len(j.Warnings))
	}
	return fmt.Sprintf("%s %s %s.%s %q by %s: %s", j.Path, j.Operation, res, g, j.Name, j.User, verdict)
}

// recorder is a TLS proxy in front of rrguard that keeps every review it relays.
type recorder struct {
	addr string
	mu   sync.Mutex
	log  []judgement
}

// startRecorder serves on host (a free port) with the certificate in certDir and relays each
// request to rrguard on upstream, trusting caPEM.
func startRecorder(ctx context.Context, host, certDir, upstream string, caPEM []byte) (*recorder, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in caPEM")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	r := &recorder{addr: l.Addr().String()}
	up := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.relay(w, req, up, upstream) }),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	return r, nil
}

func (r *recorder) relay(w http.ResponseWriter, req *http.Request, up *http.Client, upstream string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), http.MethodPost, "https://"+upstream+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.Header.Set("Content-Type", req.Header.Get("Content-Type"))
	resp, err := up.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.keep(req.URL.Path, body, answer)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// keep records a review and its answer (reviews that do not decode are not rrguard's
// judgements: the API server would fail them).
func (r *recorder) keep(path string, review, answer []byte) {
	var in, out admissionv1.AdmissionReview
	if json.Unmarshal(review, &in) != nil || in.Request == nil || json.Unmarshal(answer, &out) != nil || out.Response == nil {
		return
	}
	q, a := in.Request, out.Response
	j := judgement{
		Path: path, Group: q.Resource.Group, Resource: q.Resource.Resource, SubResource: q.SubResource,
		Operation: string(q.Operation), Name: q.Name, User: q.UserInfo.Username,
		DryRun: q.DryRun != nil && *q.DryRun, Allowed: a.Allowed, Status: a.Result, Warnings: a.Warnings,
		Patched: len(a.Patch) > 0,
	}
	r.mu.Lock()
	r.log = append(r.log, j)
	r.mu.Unlock()
}

// mark returns the position of the next review, for since.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// since returns the reviews recorded from mark on.
func (r *recorder) since(mark int) []judgement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log[mark:])
}

// judgements are the reviews of a step.
type judgements []judgement

// of returns the validating reviews of group ("" core) on resource.
func (js judgements) of(path, group, resource string) judgements {
	var out judgements
	for _, j := range js {
		if j.Path == path && j.Group == group && j.Resource == resource {
			out = append(out, j)
		}
	}
	return out
}

func (js judgements) String() string {
	var b strings.Builder
	for i, j := range js {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(j.String())
	}
	if len(js) == 0 {
		return "none"
	}
	return b.String()
}
