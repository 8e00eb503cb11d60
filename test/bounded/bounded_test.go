//go:build e2e

// Package bounded proves that what one admission request costs rrguard is bounded before any of
// it is parsed: bin/webhook, run as its Deployment runs it (one CPU, GOMEMLIMIT at the 512 MiB
// memory limit) against a real API server holding 3,000 Nodes, takes rounds of 16 concurrent
// hostile reviews (a BGPPeer with a 1.7 MB selector, posted straight to its TLS port, as
// anyone who reaches the port can) and stays under its memory limit while the reviews of an
// ordinary user are still answered.
package bounded

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

var (
	h          *harness.Harness
	webhookBin string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if h, err = harness.Start(harness.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	// RRGUARD_WEBHOOK runs another build of the webhook (an older one, to measure it).
	if webhookBin = os.Getenv("RRGUARD_WEBHOOK"); webhookBin == "" {
		if webhookBin, err = h.Build("./cmd/webhook"); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: build the webhook: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

const (
	nodes = 3000
	zones = 3
	// memoryLimit is config/webhook/deployment.yaml's limits.memory.
	memoryLimit = 512 << 20
	// hostileSelector is the probe's: 1.7 MB of a selector that Calico's parser accepts,
	// naming labels no node has (the did-you-mean search's worst case too).
	hostileSize = 1_700_000
)

// createCluster creates the nodes (two reflectors per zone), one BGPPeer per zone peering its
// clients with its reflectors, one between the reflectors, and the mesh off, with 16 writers.
func createCluster(ctx context.Context, t *testing.T) {
	t.Helper()
	var objs []*unstructured.Unstructured
	for i := 0; i < nodes; i++ {
		name, zone := fmt.Sprintf("node-%05d", i), fmt.Sprintf("zone-%d", i%zones)
		labels := map[string]interface{}{"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone, "rack": fmt.Sprintf("r%d", i%40)}
		ann := map[string]interface{}{"projectcalico.org/IPv4Address": fmt.Sprintf("10.%d.%d.%d/8", i>>16&255, i>>8&255, i&255)}
		if i < 2*zones {
			labels["route-reflector"] = "true"
			ann["projectcalico.org/RouteReflectorClusterID"] = fmt.Sprintf("224.0.0.%d", i%zones+1)
		}
		objs = append(objs, &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]interface{}{"name": name, "labels": labels, "annotations": ann}}})
	}
	peer := func(name, nodeSelector, peerSelector string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
			"metadata": map[string]interface{}{"name": name}, "spec": map[string]interface{}{"nodeSelector": nodeSelector, "peerSelector": peerSelector}}}
	}
	for z := 0; z < zones; z++ {
		objs = append(objs, peer(fmt.Sprintf("clients-zone-%d", z), fmt.Sprintf("!has(route-reflector) && topology.kubernetes.io/zone == 'zone-%d'", z),
			fmt.Sprintf("has(route-reflector) && topology.kubernetes.io/zone == 'zone-%d'", z)))
	}
	objs = append(objs, peer("rr-mesh", "has(route-reflector)", "has(route-reflector)"), &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration", "metadata": map[string]interface{}{"name": "default"},
		"spec": map[string]interface{}{"nodeToNodeMeshEnabled": false, "asNumber": 64512}}})
	work := make(chan *unstructured.Unstructured)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := h.Client.Create(ctx, o); err != nil {
					select {
					case errs <- fmt.Errorf("create %s %s: %w", o.GetKind(), o.GetName(), err):
					default:
					}
				}
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// webhook is bin/webhook running as a process of its own.
type webhook struct {
	cmd                       *exec.Cmd
	log                       *harness.LogBuffer
	url, metricsURL, readyURL string
}

// startWebhook runs bin/webhook as config/webhook/deployment.yaml does: GOMAXPROCS from limits.cpu
// (1), GOMEMLIMIT from limits.memory (512 MiB).
func startWebhook(t *testing.T) *webhook {
	t.Helper()
	_, certDir := harness.ServingDir(t, "rrguard-bounded-ca")
	port, metrics, probe := harness.FreePortFor(t), harness.FreePortFor(t), harness.FreePortFor(t)
	w := &webhook{log: &harness.LogBuffer{}, url: fmt.Sprintf("https://127.0.0.1:%d/validate", port),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics), readyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", probe)}
	w.cmd = exec.Command(webhookBin, "--kubeconfig", h.Kubeconfig, "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--cert-dir", certDir,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics), "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe), "--disable-audit")
	w.cmd.Env = append(os.Environ(), "GOMAXPROCS=1", fmt.Sprintf("GOMEMLIMIT=%d", memoryLimit))
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	})
	harness.Eventually(t, "bin/webhook ready", 3*time.Minute, func() error { return harness.Ready(w.readyURL) })
	return w
}

// memory reads a field of the webhook process's /proc status (VmRSS, VmHWM) in bytes.
func (w *webhook) memory(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, w.cmd.Process.Pid)
	return 0
}

// metric returns the sum of a Prometheus metric's samples on the webhook's /metrics.
func (w *webhook) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(w.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
	}
	return sum
}

// review is an AdmissionReview, as JSON, of op on obj (and old).
func review(t *testing.T, uid string, op admissionv1.Operation, kind metav1.GroupVersionKind, name string, obj, old any) []byte {
	t.Helper()
	raw := func(o any) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: types.UID(uid), Operation: op, Kind: kind, Name: name, Object: raw(obj), OldObject: raw(old)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileReview is the probe's: the CREATE of a BGPPeer whose peerSelector is 1.7 MB of
// has() terms on labels no node has.
func hostileReview(t *testing.T, i int) []byte {
	var sel strings.Builder
	for j := 0; sel.Len() < hostileSize; j++ {
		fmt.Fprintf(&sel, "has(zoen%d) || ", j)
	}
	sel.WriteString("has(zone)")
	name := fmt.Sprintf("hostile-%d", i)
	return review(t, "hostile-"+strconv.Itoa(i), admissionv1.Create, metav1.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"}, name,
		map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"nodeSelector": "all()", "peerSelector": sel.String()}}, nil)
}

// userReview is what an ordinary user sends meanwhile: a label on a client node.
func userReview(t *testing.T, i int) []byte {
	node := func(labels map[string]any) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "node-00100", "labels": labels,
			"annotations": map[string]any{"projectcalico.org/IPv4Address": "10.0.0.100/8"}}}
	}
	labels := map[string]any{"kubernetes.io/hostname": "node-00100", "topology.kubernetes.io/zone": "zone-1", "rack": "r20"}
	changed := map[string]any{"team": fmt.Sprintf("t%d", i)}
	for k, v := range labels {
		changed[k] = v
	}
	return review(t, "user-"+strconv.Itoa(i), admissionv1.Update, metav1.GroupVersionKind{Version: "v1", Kind: "Node"}, "node-00100", node(changed), node(labels))
}

// answer is one POST's outcome.
type answer struct {
	status     int
	retryAfter string
	resp       *admissionv1.AdmissionResponse
	took       time.Duration
	err        error
}

func send(c *http.Client, url string, body []byte) answer {
	start := time.Now()
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start), err: err}
	if resp.StatusCode == http.StatusOK {
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
			a.err = fmt.Errorf("not an AdmissionReview (%v): %.300s", err, data)
		}
		a.resp = out.Response
	} else if a.err == nil {
		a.err = fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, data)
	}
	return a
}

func client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test server with a throwaway certificate
		MaxIdleConnsPerHost: 32,
	}}
}

// TestHostileSelectorsStayWithinTheMemoryLimit sends rounds of 16 concurrent hostile reviews
// to bin/webhook while a user's label change is reviewed every 100 ms: every hostile review
// is refused (selector-syntax, naming the field and Calico's limit) or answered 429 with
// Retry-After, never allowed; the webhook's peak RSS stays under the Deployment's memory
// limit; every user review is answered, allowed, within the API server's 3 s.
func TestHostileSelectorsStayWithinTheMemoryLimit(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	createCluster(ctx, t)
	t.Logf("created %d Nodes in %v", nodes, time.Since(start).Round(time.Millisecond))
	w := startWebhook(t)
	idle := w.memory(t, "VmRSS")
	const rounds, burst = 4, 16
	hostile := make([][]byte, burst)
	for i := range hostile {
		hostile[i] = hostileReview(t, i)
	}
	c := client()
	defer c.CloseIdleConnections()

	stop := make(chan struct{})
	userDone := make(chan []answer)
	go func() {
		var out []answer
		for i := 0; ; i++ {
			select {
			case <-stop:
				userDone <- out
				return
			case <-time.After(100 * time.Millisecond):
			}
			out = append(out, send(c, w.url, userReview(t, i)))
		}
	}()
	var hostileAnswers []answer
	var mu sync.Mutex
	burstStart := time.Now()
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for i := 0; i < burst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := send(c, w.url, hostile[i])
				mu.Lock()
				hostileAnswers = append(hostileAnswers, a)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	burstTook := time.Since(burstStart)
	close(stop)
	users := <-userDone
	peak, after := w.memory(t, "VmHWM"), w.memory(t, "VmRSS")

	refused, throttled := 0, 0
	for _, a := range hostileAnswers {
		switch {
		case a.status == http.StatusTooManyRequests && a.retryAfter != "":
			throttled++
		case a.resp != nil && !a.resp.Allowed && a.resp.Result != nil &&
			strings.Contains(a.resp.Result.Message, "[selector-syntax] BGPPeer hostile-") &&
			strings.Contains(a.resp.Result.Message, "spec.peerSelector is 1700") && strings.Contains(a.resp.Result.Message, "characters long; Calico allows 1024"):
			refused++
		case a.resp != nil && a.resp.Allowed:
			t.Errorf("a hostile review was allowed: %+v", a.resp)
		default:
			t.Errorf("a hostile review: HTTP %d, %v", a.status, a.err)
		}
	}
	var took []time.Duration
	for _, a := range users {
		switch {
		case a.err != nil:
			t.Errorf("a user's review was not answered: %v", a.err)
		case !a.resp.Allowed:
			t.Errorf("a user's label change was refused: %+v", a.resp.Result)
		}
		took = append(took, a.took)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	if len(took) < 5 {
		t.Fatalf("only %d user reviews were sent during the bursts", len(took))
	}
	p50, slowest := took[len(took)/2], took[len(took)-1]
	t.Logf("%d rounds of %d hostile reviews (%d bytes each) in %v: %d refused (selector-syntax), %d answered 429", rounds, burst, len(hostile[0]), burstTook.Round(time.Millisecond), refused, throttled)
	t.Logf("webhook RSS: %.0f MB idle with %d Nodes, %.0f MB at peak, %.0f MB after (limit %d MiB)", float64(idle)/1e6, nodes, float64(peak)/1e6, float64(after)/1e6, memoryLimit>>20)
	t.Logf("%d user reviews meanwhile: p50 %v, max %v", len(took), p50.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if refused == 0 {
		t.Errorf("no hostile review was refused as selector-syntax: the limit was never reached, only the 429s")
	}
	if peak >= memoryLimit {
		t.Errorf("peak RSS %d MiB: over the Deployment's memory limit of %d MiB, the container would be OOM-killed", peak>>20, memoryLimit>>20)
	}
	if slowest > 3*time.Second {
		t.Errorf("a user's review took %v: the API server gives rrguard 3 s", slowest)
	}
	if n := w.metric(t, "rrguard_admission_throttled_total"); int(n) != throttled {
		t.Errorf("rrguard_admission_throttled_total is %v, want the %d 429s", n, throttled)
	}
	if t.Failed() {
		t.Logf("bin/webhook's log:\n%s", w.log.String())
	}
}
