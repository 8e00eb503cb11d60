// Command loadbench measures rrguard's admission latency under load: it starts the test
// control plane (bin/), creates -nodes Calico Nodes and -peers BGPPeers and runs bin/webhook
// as its own process (so that its RSS is its own). Then either
//
//   - through the API server (default): it registers the webhook with
//     config/webhook/webhooks.yaml and sends label changes of Nodes and of the rack BGPPeers
//     (-kinds) through the API server at each -concurrency, in turns with a no-op
//     controller-runtime webhook (its own process)
//     registered the same way: the floor any webhook pays. Latencies are the API server's own
//     (apiserver_admission_webhook_admission_duration_seconds), rrguard's own (decoding to
//     response, in the process) and the client's.
//
//   - or straight to the webhook (-direct): AdmissionReviews of Node label changes posted to
//     /validate over keep-alive HTTPS for -duration at each -concurrency, to a no-op
//     controller-runtime webhook (its own process) and to rrguard in turn: reviews/s and
//     p50/p99, each as a ratio to the no-op's.
//
//     go build -o bin/webhook ./cmd/webhook && go run ./hack/loadbench [-nodes 5000 -peers 1000] [-direct]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rrguard/rrguard/test/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// webhookPprof is bin/webhook's --pprof-bind-address.
var webhookPprof string

// loadSlices is how many turns the no-op and rrguard take at each concurrency level.
const loadSlices = 4

// kindsFlag is -kinds.
var kindsFlag string

// A changeKind is a kind of object whose labels loadbench changes: object(i) is the i'th to
// change (i counts every change of the run), webhook the validating webhook that judges it
// (config/webhook/webhooks.yaml), mutate the mutating one ("": none).
type changeKind struct {
	name, webhook, mutate string
	object                func(i int) *unstructured.Unstructured
}

// changeKinds are the kinds -kinds may name, for a cluster of nodes Nodes and peers rack
// BGPPeers. A label no selector reads, on a Node; any label, on a BGPPeer (calico-node reads
// its spec only): what kubectl apply and GitOps tools write most.
func changeKinds(nodes, peers int) map[string]changeKind {
	object := func(apiVersion, kind, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetName(name)
		return o
	}
	return map[string]changeKind{
		"Node": {name: "Node", webhook: "nodes.validate.rrguard.io", mutate: "nodes.mutate.rrguard.io", object: func(i int) *unstructured.Unstructured {
			return object("v1", "Node", fmt.Sprintf("node-%05d", i*7919%nodes))
		}},
		"BGPPeer": {name: "BGPPeer", webhook: "bgp.validate.rrguard.io", object: func(i int) *unstructured.Unstructured {
			return object("crd.projectcalico.org/v1", "BGPPeer", fmt.Sprintf("rack-%04d", i*7919%max(peers, 1)))
		}},
	}
}

// summaryFile, when set, receives the API server's validating latencies as a Markdown table
// (make bench-compare puts it in README.md).
var summaryFile string

func main() {
	nodes := flag.Int("nodes", 5000, "Calico Nodes in the cluster")
	peers := flag.Int("peers", 1000, "BGPPeers in the cluster (one per rack of nodes)")
	changes := flag.Int("changes", 400, "label changes per concurrency level and kind of object")
	flag.StringVar(&kindsFlag, "kinds", "Node,BGPPeer", "the kinds of object whose labels change: Node, BGPPeer")
	levels := flag.String("concurrency", "1,8,64", "concurrency levels")
	webhookBin := flag.String("webhook", "bin/webhook", "the webhook binary (go build -o bin/webhook ./cmd/webhook)")
	flag.StringVar(&summaryFile, "summary", "", "write rrguard's and the no-op's validating latencies through the API server to this file, as a Markdown table")
	flag.StringVar(&webhookPprof, "webhook-pprof", "0", "the webhook's --pprof-bind-address, to profile it during the run (e.g. 127.0.0.1:6060)")
	direct := flag.Bool("direct", false, "send AdmissionReviews straight to the webhooks instead of changes through the API server")
	duration := flag.Duration("duration", 5*time.Second, "with -direct: how long each concurrency level runs per webhook")
	noop := flag.Bool(serveNoopFlag, false, "serve the no-op webhook on -port with -cert-dir (the direct mode runs loadbench so)")
	port := flag.Int("port", 0, "with -"+serveNoopFlag+": the port")
	certDir := flag.String("cert-dir", "", "with -"+serveNoopFlag+": tls.crt and tls.key")
	flag.Parse()
	if *noop {
		if err := serveNoop(*port, *certDir); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench: no-op webhook:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*webhookBin, *nodes, *peers, *changes, *levels, *direct, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func run(webhookBin string, nodes, peers, changes int, levels string, direct bool, duration time.Duration) error {
	ctx := context.Background()
	if _, err := os.Stat(webhookBin); err != nil {
		return fmt.Errorf("%w: build it first: go build -o bin/webhook ./cmd/webhook", err)
	}
	h, err := harness.Start(harness.Options{})
	if err != nil {
		return err
	}
	defer h.Stop()
	start := time.Now()
	if err := createCluster(ctx, h.Client, nodes, peers); err != nil {
		return err
	}
	fmt.Printf("cluster: %d Nodes, %d BGPPeers created in %v\n", nodes+2, peers+1, time.Since(start).Round(time.Millisecond))

	ca, err := harness.NewCA("rrguard-loadbench-ca")
	if err != nil {
		return err
	}
	certDir, err := os.MkdirTemp("", "rrguard-loadbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(certDir)
	if _, err := ca.WriteServing(certDir); err != nil {
		return err
	}
	rrguard, err := startWebhook(ctx, webhookBin, h.Kubeconfig, certDir)
	if err != nil {
		return err
	}
	defer rrguard.stop()
	fmt.Printf("rrguard ready in %v, RSS %s\n", time.Since(rrguard.started).Round(time.Millisecond), rrguard.rss())
	var conc []int
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency %q: want numbers like 1,8,64", levels)
		}
		conc = append(conc, n)
	}
	var kinds []changeKind
	for _, k := range strings.Split(kindsFlag, ",") {
		ck, ok := changeKinds(nodes, peers)[strings.TrimSpace(k)]
		if !ok {
			return fmt.Errorf("-kinds %q: want Node, BGPPeer or both, comma-separated", kindsFlag)
		}
		kinds = append(kinds, ck)
	}
	noop, err := startNoop(certDir)
	if err != nil {
		return err
	}
	defer noop.stop()
	if direct {
		return runDirect(rrguard, noop, ca.CertPEM, nodes, peers, conc, duration)
	}
	cs, err := kubernetes.NewForConfig(h.Config)
	if err != nil {
		return err
	}
	fmt.Printf("\n%-8s %-8s %5s %7s  %-26s %-19s %-24s %-21s %s\n", "changes", "webhook", "conc", "changes", "apiserver validate p50/p99", "in rrguard p50/p99", "apiserver mutate p50/p99", "client p50/p99", "webhook RSS")
	seq := 0
	validate := map[string][]*histogram{} // by kind and webhook, per level
	targets := []target{{"no-op", "https://" + noop.addr, func() string { return "-" }, nil}, {"rrguard", "https://" + rrguard.addr, rrguard.rss, rrguard}}
	for _, c := range conc {
		for _, kind := range kinds {
			// The level runs in slices, the no-op's and rrguard's in turn, so that both meet the
			// machine's load alike: on a shared machine it drifts over a run.
			res := map[string]*result{}
			for _, tg := range targets {
				res[tg.name] = &result{v: newHistogram(), m: newHistogram(), own: newHistogram()}
			}
			for sl := range loadSlices {
				n := changes / loadSlices
				if sl == loadSlices-1 {
					n = changes - n*(loadSlices-1)
				}
				for _, tg := range targets {
					if err := register(ctx, h, tg.url, ca.CertPEM); err != nil {
						return err
					}
					if err := measure(ctx, h.Client, cs, tg, kind, n, c, &seq, res[tg.name]); err != nil {
						return err
					}
				}
			}
			for _, tg := range targets {
				r := res[tg.name]
				validate[kind.name+" "+tg.name] = append(validate[kind.name+" "+tg.name], r.v)
				slices.Sort(r.client)
				own, mutate := "-", "-"
				if tg.own != nil {
					own = fmt.Sprintf("%s / %s", ms(r.own.quantile(0.5)), ms(r.own.quantile(0.99)))
				}
				if kind.mutate != "" {
					mutate = fmt.Sprintf("%s / %s", ms(r.m.quantile(0.5)), ms(r.m.quantile(0.99)))
				}
				fmt.Printf("%-8s %-8s %5d %7d  %-26s %-19s %-24s %-21s %s\n", kind.name, tg.name, c, changes,
					fmt.Sprintf("%s / %s (n=%d)", ms(r.v.quantile(0.5)), ms(r.v.quantile(0.99)), int(r.v.count)), own, mutate,
					fmt.Sprintf("%s / %s", ms(r.client[len(r.client)/2]), ms(r.client[len(r.client)*99/100])), tg.rss())
			}
		}
	}
	fmt.Printf("\nrrguard peak RSS %s (log: %s); API server buckets are 5, 25, 100, 500 ms…: its quantiles are interpolated within them\n", rrguard.peak(), rrguard.log.Name())
	if summaryFile != "" {
		return os.WriteFile(summaryFile, []byte(summary(conc, kinds, validate, nodes, peers, changes, rrguard.peak())), 0o644)
	}
	return nil
}

// A target is a webhook loadbench measures; own, when set, is its process, whose own
// durations it reads.
type target struct {
	name, url string
	rss       func() string
	own       *webhookProcess
}

// result is what one webhook's slices of a level measured: the API server's validating and
// mutating durations, the webhook's own, and the client's latencies.
type result struct {
	v, m, own *histogram
	client    []float64
}

// measure sends n label changes of kind at concurrency c, the webhook t registered, and adds
// what they took to r.
func measure(ctx context.Context, c client.Client, cs *kubernetes.Clientset, t target, kind changeKind, n, conc int, seq *int, r *result) error {
	before, err := webhookDurations(ctx, cs)
	if err != nil {
		return err
	}
	var ownBefore durations
	if t.own != nil {
		if ownBefore, err = t.own.ownDurations(ctx); err != nil {
			return err
		}
	}
	lat, err := labelChanges(ctx, c, kind, n, conc, seq)
	if err != nil {
		return fmt.Errorf("%s at concurrency %d: %w", t.name, conc, err)
	}
	after, err := webhookDurations(ctx, cs)
	if err != nil {
		return err
	}
	r.v.add(after.minus(before, kind.webhook))
	if kind.mutate != "" {
		r.m.add(after.minus(before, kind.mutate))
	}
	r.client = append(r.client, lat...)
	if t.own != nil {
		ownAfter, err := t.own.ownDurations(ctx)
		if err != nil {
			return err
		}
		r.own.add(ownAfter.minus(ownBefore, "validate"))
	}
	return nil
}

// summary is the validating webhook's latency through the API server, rrguard beside the
// no-op, per kind of change and concurrency level, as a Markdown table; validate holds the
// histograms by kind and webhook ("Node rrguard"), per level.
func summary(conc []int, kinds []changeKind, validate map[string][]*histogram, nodes, peers, changes int, peak string) string {
	var b strings.Builder
	var names []string
	for _, k := range kinds {
		names = append(names, k.name)
	}
	fmt.Fprintf(&b, "%d Nodes, %d rack BGPPeers; %d label changes per level of each kind (%s) through the real API server; its validating-webhook latency:\n\n", nodes+2, peers+1, changes, strings.Join(names, ", "))
	b.WriteString("| changes | concurrency | no-op p50 / p99 | rrguard p50 / p99 | rrguard ÷ no-op |\n|---|---|---|---|---|\n")
	ratio := func(x, y float64) string {
		if y <= 0 || math.IsNaN(x) || math.IsNaN(y) {
			return "-"
		}
		return fmt.Sprintf("%.2f×", x/y)
	}
	for _, k := range kinds {
		for i, c := range conc {
			n, r := validate[k.name+" no-op"][i], validate[k.name+" rrguard"][i]
			fmt.Fprintf(&b, "| %s labels | %d | %s / %s | %s / %s | %s / %s |\n", k.name, c, ms(n.quantile(0.5)), ms(n.quantile(0.99)), ms(r.quantile(0.5)), ms(r.quantile(0.99)),
				ratio(r.quantile(0.5), n.quantile(0.5)), ratio(r.quantile(0.99), n.quantile(0.99)))
		}
	}
	fmt.Fprintf(&b, "\nrrguard's peak RSS: %s.\n", peak)
	return b.String()
}

func ms(d float64) string {
	if math.IsNaN(d) {
		return "-"
	}
	return fmt.Sprintf("%.1fms", d*1000)
}

// createCluster creates two reflectors, the clients in racks of nodes/peers, one BGPPeer per
// rack peering it with the reflectors, a reflector mesh peer and the mesh-off configuration.
func createCluster(ctx context.Context, c client.Client, nodes, peers int) error {
	node := func(name string, i int, labels map[string]interface{}, cid string) *unstructured.Unstructured {
		ann := map[string]interface{}{"projectcalico.org/IPv4Address": fmt.Sprintf("10.%d.%d.%d/8", i>>16&255, i>>8&255, i&255)}
		if cid != "" {
			ann["projectcalico.org/RouteReflectorClusterID"] = cid
		}
		labels["kubernetes.io/hostname"] = name
		return &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]interface{}{"name": name, "labels": labels, "annotations": ann},
			"status":   map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Ready", "status": "True"}}}}}
	}
	peer := func(name, nodeSel string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
			"metadata": map[string]interface{}{"name": name},
			"spec":     map[string]interface{}{"nodeSelector": nodeSel, "peerSelector": "has(route-reflector)"}}}
	}
	objs := []*unstructured.Unstructured{
		node("rr-1", 1, map[string]interface{}{"route-reflector": "true"}, "224.0.0.1"),
		node("rr-2", 2, map[string]interface{}{"route-reflector": "true"}, "224.0.0.1"),
		peer("rr-mesh", "has(route-reflector)"),
		{Object: map[string]interface{}{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration",
			"metadata": map[string]interface{}{"name": "default"}, "spec": map[string]interface{}{"nodeToNodeMeshEnabled": false, "asNumber": 64512}}},
	}
	for r := 0; r < peers; r++ {
		objs = append(objs, peer(fmt.Sprintf("rack-%04d", r), fmt.Sprintf("rack == 'r%d'", r)))
	}
	for i := 0; i < nodes; i++ {
		objs = append(objs, node(fmt.Sprintf("node-%05d", i), 10+i, map[string]interface{}{"rack": fmt.Sprintf("r%d", i%max(peers, 1))}, ""))
	}
	return parallel(16, len(objs), func(i int) error {
		if err := c.Create(ctx, objs[i]); err != nil {
			return fmt.Errorf("create %s %s: %w", objs[i].GetKind(), objs[i].GetName(), err)
		}
		return nil
	})
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// labelChanges relabels `changes` objects of kind k from `conc` clients and returns the
// sorted client-side latencies in seconds.
func labelChanges(ctx context.Context, c client.Client, k changeKind, changes, conc int, seq *int) ([]float64, error) {
	lat := make([]float64, changes)
	base := *seq
	*seq += changes
	err := parallel(conc, changes, func(i int) error {
		o := k.object(base + i)
		patch := fmt.Sprintf(`{"metadata":{"labels":{"loadbench":"c%d"}}}`, base+i)
		t0 := time.Now()
		if err := c.Patch(ctx, o, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return fmt.Errorf("label %s %s: %w", k.name, o.GetName(), err)
		}
		lat[i] = time.Since(t0).Seconds()
		return nil
	})
	slices.Sort(lat)
	return lat, err
}

// register points rrguard's webhook configurations at url (replacing earlier ones) and waits
// until the API server calls it.
func register(ctx context.Context, h *harness.Harness, url string, ca []byte) error {
	for _, o := range []client.Object{&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.MutatingWebhookConfiguration{}} {
		o.SetName("rrguard")
		if err := client.IgnoreNotFound(h.Client.Delete(ctx, o)); err != nil {
			return err
		}
	}
	if err := h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), url, ca); err != nil {
		return err
	}
	// The API server picks webhook configurations up from its informer within a second or two.
	time.Sleep(3 * time.Second)
	return nil
}

// histogram is one webhook's admission duration histogram summed over its label sets.
type histogram struct {
	count   float64
	buckets map[float64]float64 // upper bound -> cumulative count
}

func newHistogram() *histogram { return &histogram{buckets: map[float64]float64{}} }

// add sums o into h (the same buckets).
func (h *histogram) add(o *histogram) {
	h.count += o.count
	for ub, c := range o.buckets {
		h.buckets[ub] += c
	}
}

type durations map[string]*histogram

func webhookDurations(ctx context.Context, cs *kubernetes.Clientset) (durations, error) {
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	return histograms(raw, "apiserver_admission_webhook_admission_duration_seconds", "name")
}

// ownDurations are rrguard's own admission durations (decoding to response, in the
// process), by webhook (validate, mutate): with the API server's, they tell the time spent in
// rrguard from the time spent reaching it.
func (p *webhookProcess) ownDurations(ctx context.Context) (durations, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rrguard's metrics: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return histograms(raw, "rrguard_admission_duration_seconds", "webhook")
}

// histograms parses the histogram family of a Prometheus text exposition, summed by the
// value of one label.
func histograms(raw []byte, family, label string) (durations, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out := durations{}
	f := families[family]
	if f == nil {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		name := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				name = l.GetValue()
			}
		}
		hh := out[name]
		if hh == nil {
			hh = &histogram{buckets: map[float64]float64{}}
			out[name] = hh
		}
		hh.count += float64(m.GetHistogram().GetSampleCount())
		for _, b := range m.GetHistogram().GetBucket() {
			hh.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return out, nil
}

func (d durations) minus(before durations, name string) *histogram {
	out := &histogram{buckets: map[float64]float64{}}
	a, b := d[name], before[name]
	if a == nil {
		return out
	}
	out.count = a.count
	for ub, c := range a.buckets {
		out.buckets[ub] = c
	}
	if b != nil {
		out.count -= b.count
		for ub, c := range b.buckets {
			out.buckets[ub] -= c
		}
	}
	return out
}

// quantile interpolates linearly within the bucket that holds q, as Prometheus'
// histogram_quantile does.
func (h *histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	bounds := make([]float64, 0, len(h.buckets))
	for ub := range h.buckets {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	rank := q * h.count
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := h.buckets[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return prevBound
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/max(c-prevCount, 1)
		}
		prevBound, prevCount = ub, c
	}
	return prevBound
}

// webhookProcess is bin/webhook running against the test API server.
type webhookProcess struct {
	cmd  *exec.Cmd
	log  *os.File // its log, kept for a look after the run
	addr string
	// metricsAddr serves its metrics (rrguard only).
	metricsAddr string
	started     time.Time
}

func startWebhook(ctx context.Context, bin, kubeconfig, certDir string) (*webhookProcess, error) {
	var ports [3]int
	for i := range ports {
		p, err := harness.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	var err error
	p := &webhookProcess{addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), metricsAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]), started: time.Now()}
	p.cmd = exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig, "--host", "127.0.0.1", "--port", strconv.Itoa(ports[0]), "--cert-dir", certDir,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--disable-audit")
	if webhookPprof != "0" {
		p.cmd.Args = append(p.cmd.Args, "--pprof-bind-address", webhookPprof)
	}
	if p.log, err = os.CreateTemp("", "rrguard-loadbench-webhook-*.log"); err != nil {
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	if err := harness.Poll(3*time.Minute, func() error { return harness.Ready(fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])) }); err != nil {
		p.stop()
		return nil, fmt.Errorf("bin/webhook not ready (log: %s): %w", p.log.Name(), err)
	}
	return p, nil
}

func (p *webhookProcess) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func (p *webhookProcess) status(field string) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func (p *webhookProcess) rss() string  { return p.status("VmRSS") }
func (p *webhookProcess) peak() string { return p.status("VmHWM") }
