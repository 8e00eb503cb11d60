package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/rrguard/rrguard/test/harness"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// serveNoopFlag makes loadbench serve the no-op webhook instead (run as its own process by
// the direct mode, so that it and rrguard each have a process of their own).
const serveNoopFlag = "serve-noop"

// serveNoop is a no-op controller-runtime webhook: controller-runtime's webhook server and
// admission handler answering "allowed" at once on /validate and /mutate, HTTP/1.1 only as
// rrguard's: the floor any webhook pays. It serves until killed.
func serveNoop(port int, certDir string) error {
	ctrl.SetLogger(logr.Discard())
	srv := crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}})
	allow := &cradmission.Webhook{Handler: cradmission.HandlerFunc(func(context.Context, cradmission.Request) cradmission.Response {
		return cradmission.Allowed("")
	})}
	srv.Register("/validate", allow)
	srv.Register("/mutate", allow)
	return srv.Start(ctrl.SetupSignalHandler())
}

// startNoop runs loadbench -serve-noop as its own process, with the certificate in certDir.
func startNoop(certDir string) (*webhookProcess, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &webhookProcess{addr: fmt.Sprintf("127.0.0.1:%d", port), started: time.Now()}
	p.cmd = exec.Command(self, "-"+serveNoopFlag, "-port", strconv.Itoa(port), "-cert-dir", certDir)
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a reachability probe
		if err == nil {
			c.Close()
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("the no-op webhook did not listen on %s within a minute", p.addr)
}

// runDirect sends AdmissionReviews of Node label changes straight to the webhooks' /validate
// over keep-alive HTTPS connections, as the API server does, at each concurrency: to the no-op
// webhook and to rrguard in turn, so that the ratios compare the same moment's machine.
func runDirect(rrguard, noop *webhookProcess, ca []byte, nodes, peers int, levels []int, duration time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	noopURL := "https://" + noop.addr + "/validate"
	rrguardURL := "https://" + rrguard.addr + "/validate"
	reviews, err := labelReviews(nodes, peers, 512)
	if err != nil {
		return err
	}
	for _, url := range []string{noopURL, rrguardURL} {
		if _, err = send(url, pool, reviews, 1, 50, 0); err != nil { // warm up: connections, caches
			return fmt.Errorf("%s: %w", url, err)
		}
	}
	procs := [2]int{noop.cmd.Process.Pid, rrguard.cmd.Process.Pid}
	fmt.Printf("\nstraight to the webhook: Node label changes (%d nodes), keep-alive HTTPS, %v per level and webhook, in %d alternating slices\n", nodes, duration, rounds)
	fmt.Printf("%5s  %-18s %-18s %-7s  %-20s %-20s %-7s  %-17s %-7s  %s\n", "conc", "no-op reviews/s", "rrguard reviews/s", "ratio",
		"no-op p50/p99", "rrguard p50/p99", "p99 ×", "CPU µs/review", "CPU ×", "rrguard RSS")
	for _, c := range levels {
		var res [2]*load
		var cpu [2]time.Duration
		for range rounds {
			for i, url := range []string{noopURL, rrguardURL} {
				before := cpuTime(procs[i])
				l, err := send(url, pool, reviews, c, 0, duration/rounds)
				if err != nil {
					return fmt.Errorf("%s at concurrency %d: %w", url, c, err)
				}
				cpu[i] += cpuTime(procs[i]) - before
				res[i] = res[i].add(l)
			}
		}
		n, r := res[0], res[1]
		nc, rc := cpu[0].Seconds()*1e6/float64(n.n), cpu[1].Seconds()*1e6/float64(r.n)
		fmt.Printf("%5d  %-18.0f %-18.0f %-7s  %-20s %-20s %-7s  %-17s %-7s  %s\n", c, n.rate(), r.rate(), fmt.Sprintf("%.2fx", r.rate()/n.rate()),
			fmt.Sprintf("%s / %s", ms(n.quantile(0.5)), ms(n.quantile(0.99))), fmt.Sprintf("%s / %s", ms(r.quantile(0.5)), ms(r.quantile(0.99))),
			fmt.Sprintf("%.2fx", r.quantile(0.99)/n.quantile(0.99)), fmt.Sprintf("%.0f / %.0f", nc, rc), fmt.Sprintf("%.2fx", rc/nc), rrguard.rss())
	}
	fmt.Println("ratio: rrguard's reviews/s over the no-op's (goal ≥ 0.77); p99 ×: rrguard's p99 over the no-op's (goal ≤ 1.3);")
	fmt.Println("CPU µs/review: each server process's CPU time per review (no-op / rrguard), which load on the machine distorts less")
	return nil
}

// rounds is how many alternating slices each level is cut into, so that both webhooks see
// the same moments of a machine whose load changes.
const rounds = 5

// cpuTime is the CPU time (user and system) process pid has used, from /proc (0 elsewhere).
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux architecture
// Go supports.
const clockTicks = 100

// labelReviews are n AdmissionReviews of label changes on distinct nodes, as createCluster
// made them.
func labelReviews(nodes, peers, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		idx := i * 7919 % nodes
		name := fmt.Sprintf("node-%05d", idx)
		j := 10 + idx
		node := map[string]any{"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]any{"name": name,
				"labels":      map[string]any{"kubernetes.io/hostname": name, "rack": fmt.Sprintf("r%d", idx%max(peers, 1))},
				"annotations": map[string]any{"projectcalico.org/IPv4Address": fmt.Sprintf("10.%d.%d.%d/8", j>>16&255, j>>8&255, j&255)}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}}
		old, err := json.Marshal(node)
		if err != nil {
			return nil, err
		}
		node["metadata"].(map[string]any)["labels"].(map[string]any)["loadbench"] = fmt.Sprintf("c%d", i)
		changed, err := json.Marshal(node)
		if err != nil {
			return nil, err
		}
		out[i], err = json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "loadbench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
				Resource: metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}, Name: name, Operation: admissionv1.Update,
				Object: runtime.RawExtension{Raw: changed}, OldObject: runtime.RawExtension{Raw: old}},
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// load is one level's outcome: how many reviews in how long, and their sorted latencies.
type load struct {
	n       int
	elapsed time.Duration
	lat     []float64 // seconds
}

func (l *load) rate() float64 { return float64(l.n) / l.elapsed.Seconds() }

// add returns the union of two loads (l may be nil).
func (l *load) add(m *load) *load {
	if l == nil {
		return m
	}
	out := &load{n: l.n + m.n, elapsed: l.elapsed + m.elapsed, lat: append(slices.Clone(l.lat), m.lat...)}
	slices.Sort(out.lat)
	return out
}

func (l *load) quantile(q float64) float64 {
	return l.lat[min(len(l.lat)-1, int(q*float64(len(l.lat))))]
}

// send posts reviews from conc clients on keep-alive connections, count reviews each or, when
// count is 0, for the duration; every answer must be an "allowed".
func send(url string, pool *x509.CertPool, reviews [][]byte, conc, count int, duration time.Duration) (*load, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	deadline := time.Now().Add(duration)
	var mu sync.Mutex
	var first error
	lats := make([][]float64, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; count == 0 && time.Now().Before(deadline) || count > 0 && i < count; i++ {
				t0 := time.Now()
				if err := post(client, url, reviews[(w*131+i)%len(reviews)]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				lats[w] = append(lats[w], time.Since(t0).Seconds())
			}
		}()
	}
	wg.Wait()
	l := &load{elapsed: time.Since(start), lat: slices.Concat(lats...)}
	l.n = len(l.lat)
	slices.Sort(l.lat)
	if first == nil && l.n == 0 {
		first = fmt.Errorf("no review answered")
	}
	return l, first
}

func post(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &r); err != nil || r.Response == nil || !r.Response.Allowed {
		return fmt.Errorf("HTTP %d, not an allowed AdmissionReview: %.300s", resp.StatusCode, raw)
	}
	return nil
}
