//go:build e2e

// Package leader proves rrguard's leader election live: two webhook processes with
// --leader-elect against a real kube-apiserver, exactly one holding the Lease and auditing while
// both answer admission under concurrent load, and the other taking over when the leader dies.
package leader

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	h          *harness.Harness
	webhookBin string
)

const (
	namespace = "rrguard-system"
	leaseName = "rrguard-audit"
	// clients is how many client Nodes the cluster holds besides the two reflectors.
	clients = 300
	// peer connects every node to the reflectors; cutNode is the one client no other peer
	// selects, so the update of peer that leaves it out cuts it off.
	peer    = "all-to-reflectors"
	cutNode = "client-cut"
	racks   = 10
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	// The report kind the replicas write (--report-api=wgpolicy).
	if h, err = harness.Start(harness.Options{CRDPaths: []string{"config/crd/wgpolicy"}, Namespaces: []string{namespace}}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	if webhookBin, err = h.Build("./cmd/webhook"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build the webhook: %v\n", err)
		return 1
	}
	return m.Run()
}

// cluster is two reflectors, clients spread over racks with one BGPPeer per rack, cutNode in
// no rack, the peer that connects every node to the reflectors, and the mesh off.
func cluster() []*unstructured.Unstructured {
	node := func(name string, i int, labels map[string]interface{}, ann map[string]interface{}) *unstructured.Unstructured {
		labels["kubernetes.io/hostname"] = name
		ann["projectcalico.org/IPv4Address"] = fmt.Sprintf("10.%d.%d.%d/8", i>>16&255, i>>8&255, i&255)
		return &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]interface{}{"name": name, "labels": labels, "annotations": ann},
		}}
	}
	rrAnn := func() map[string]interface{} {
		return map[string]interface{}{"projectcalico.org/RouteReflectorClusterID": "224.0.0.1"}
	}
	objs := []*unstructured.Unstructured{
		node("rr-1", 1, map[string]interface{}{"route-reflector": "true"}, rrAnn()),
		node("rr-2", 2, map[string]interface{}{"route-reflector": "true"}, rrAnn()),
		node(cutNode, 3, map[string]interface{}{"cut": "yes"}, map[string]interface{}{}),
		bgpPeer(peer, "all()"),
		{Object: map[string]interface{}{
			"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration",
			"metadata": map[string]interface{}{"name": "default"},
			"spec":     map[string]interface{}{"nodeToNodeMeshEnabled": false, "asNumber": int64(64512)},
		}},
	}
	for r := 0; r < racks; r++ {
		objs = append(objs, bgpPeer(fmt.Sprintf("rack-%d-to-reflectors", r), fmt.Sprintf("rack == 'r%d'", r)))
	}
	for i := 0; i < clients-1; i++ {
		objs = append(objs, node(fmt.Sprintf("client-%03d", i), 10+i, map[string]interface{}{"rack": fmt.Sprintf("r%d", i%racks)}, map[string]interface{}{}))
	}
	return objs
}

func bgpPeer(name, nodeSelector string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]interface{}{"name": name},
		"spec":     map[string]interface{}{"nodeSelector": nodeSelector, "peerSelector": "has(route-reflector)"},
	}}
}

// peerUpdate is the AdmissionReview of the UPDATE of peer to nodeSelector.
func peerUpdate(t *testing.T, nodeSelector string) []byte {
	t.Helper()
	b, err := harness.UpdateReview("update-"+peer, bgpPeer(peer, "all()"), bgpPeer(peer, nodeSelector), "bgppeers")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replica is one webhook process.
type replica struct {
	name                  string
	cmd                   *exec.Cmd
	port, metrics, probes int
	log                   *harness.LogBuffer
	done                  chan struct{}
}

// start runs the webhook binary with leader election, its audit every second writing a
// ClusterPolicyReport; it is killed when the test ends.
func start(t *testing.T, name, certDir string) *replica {
	t.Helper()
	r := &replica{name: name, port: harness.FreePortFor(t), metrics: harness.FreePortFor(t), probes: harness.FreePortFor(t), log: &harness.LogBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(webhookBin,
		"--host", "127.0.0.1", "--port", strconv.Itoa(r.port), "--cert-dir", certDir,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", r.metrics),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", r.probes),
		"--leader-elect", "--leader-election-namespace", namespace,
		"--audit-interval", "1s", "--report-api", "wgpolicy")
	r.cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, r.log.String())
		}
	})
	return r
}

// kill ends the process at once (no graceful release of the Lease) and waits for it.
func (r *replica) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test server with a throwaway certificate
	MaxIdleConnsPerHost: 16,
}}

// ready is nil when the replica's readiness probe (cache synced, webhook serving) passes.
func (r *replica) ready() error {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.probes))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s readyz: HTTP %d: %s", r.name, resp.StatusCode, b)
	}
	return nil
}

// metric sums the samples of a metric on the replica's metrics endpoint whose labels contain
// every one of labels (`name="value"`).
func (r *replica) metric(name string, labels ...string) (float64, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metrics))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s metrics: %q: %w", r.name, line, err)
		}
		total += v
	}
	return total, sc.Err()
}

// audits is how many audits the replica ran and whether it says it leads.
func (r *replica) audits(t *testing.T) (runs float64, leads bool) {
	t.Helper()
	runs, err := r.metric("rrguard_audit_runs_total")
	if err != nil {
		t.Fatal(err)
	}
	status, err := r.metric("leader_election_master_status", `name="`+leaseName+`"`)
	if err != nil {
		t.Fatal(err)
	}
	return runs, status == 1
}

// decide sends one AdmissionReview to the replica's validating webhook.
func (r *replica) decide(body []byte) (*admissionv1.AdmissionResponse, error) {
	resp, err := httpClient.Post(fmt.Sprintf("https://127.0.0.1:%d%s", r.port, webhook.ValidatePath), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", r.name, resp.StatusCode, data)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
		return nil, fmt.Errorf("%s: not an AdmissionReview response (%v): %s", r.name, err, data)
	}
	return out.Response, nil
}

// load sends each replica perWorker reviews from each of workers goroutines, alternating the
// update that cuts cutNode off (must be denied, naming it) and a harmless one (must be allowed).
func load(t *testing.T, replicas []*replica, workers, perWorker int, cut, harmless []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas)*workers)
	for _, r := range replicas {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(r *replica) {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					body, wantAllowed := cut, false
					if i%2 == 1 {
						body, wantAllowed = harmless, true
					}
					resp, err := r.decide(body)
					if err == nil && resp.Allowed != wantAllowed {
						err = fmt.Errorf("%s: allowed=%v, want %v: %+v", r.name, resp.Allowed, wantAllowed, resp.Result)
					}
					if err == nil && !wantAllowed && (resp.Result == nil || !strings.Contains(resp.Result.Message, cutNode)) {
						err = fmt.Errorf("%s: refused, but not for cutting %s off: %+v", r.name, cutNode, resp.Result)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}(r)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func lease(ctx context.Context) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leaseName}, l)
	return l, err
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestOneAuditsBothAnswer runs two replicas: exactly one holds the Lease and audits while both
// answer admission correctly under concurrent load; when the leader is killed, the other takes
// the Lease over and audits, and still answers.
func TestOneAuditsBothAnswer(t *testing.T) {
	ctx := context.Background()
	start0 := time.Now()
	if err := h.Create(ctx, cluster()); err != nil {
		t.Fatal(err)
	}
	t.Logf("created %d Nodes and %d BGPPeers in %v", clients+2, racks+1, time.Since(start0).Round(time.Millisecond))
	_, certDir := harness.ServingDir(t, "rrguard-leader-ca")
	replicas := []*replica{start(t, "replica-a", certDir), start(t, "replica-b", certDir)}
	harness.Eventually(t, "both replicas ready", 60*time.Second, func() error {
		for _, r := range replicas {
			if err := r.ready(); err != nil {
				return err
			}
		}
		return nil
	})

	// Exactly one leads and audits.
	var leader, follower *replica
	harness.Eventually(t, "a leader audits", 30*time.Second, func() error {
		leader, follower = nil, nil
		for i, r := range replicas {
			if runs, leads := r.audits(t); leads && runs > 0 {
				leader, follower = r, replicas[1-i]
			}
		}
		if leader == nil {
			return fmt.Errorf("no replica leads and has audited yet")
		}
		return nil
	})
	l, err := lease(ctx)
	if err != nil {
		t.Fatalf("Lease %s/%s: %v", namespace, leaseName, err)
	}
	first := holder(l)
	if first == "" {
		t.Fatalf("Lease %s/%s has no holder while %s leads", namespace, leaseName, leader.name)
	}
	report := &unstructured.Unstructured{}
	report.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	report.SetKind("ClusterPolicyReport")
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, report); err != nil {
		t.Fatalf("the leader %s audited but wrote no report: %v", leader.name, err)
	}

	// Both answer under load, meanwhile the leader keeps auditing and the follower never does.
	cut, harmless := peerUpdate(t, "!has(cut)"), peerUpdate(t, "all()")
	leaderRuns, _ := leader.audits(t)
	loadStart := time.Now()
	load(t, replicas, 8, 50, cut, harmless)
	took := time.Since(loadStart)
	t.Logf("%d reviews answered by two replicas in %v", 2*8*50, took.Round(time.Millisecond))
	if took < 2*time.Second {
		time.Sleep(2*time.Second - took) // let at least one more audit interval pass
	}
	for _, r := range replicas {
		n, err := r.metric("rrguard_admission_requests_total", `webhook="validate"`)
		if err != nil {
			t.Fatal(err)
		}
		if n < 8*50 {
			t.Errorf("%s counts %v validate requests, want at least %d", r.name, n, 8*50)
		}
	}
	runs, leads := leader.audits(t)
	if !leads || runs <= leaderRuns {
		t.Errorf("leader %s: leads=%v, audit runs %v then %v: it stopped auditing", leader.name, leads, leaderRuns, runs)
	}
	if runs, leads := follower.audits(t); leads || runs != 0 {
		t.Fatalf("follower %s: leads=%v, audit runs %v: want neither while %s holds the Lease", follower.name, leads, runs, leader.name)
	}
	if l, err := lease(ctx); err != nil || holder(l) != first {
		t.Fatalf("Lease changed hands without a failure: %q then %q (%v)", first, holder(l), err)
	}

	// The leader dies without releasing the Lease: the follower takes it over once it expires
	// (controller-runtime's 15 s lease duration, retried every 2 s) and audits.
	leader.kill()
	killed := time.Now()
	harness.Eventually(t, "the follower takes over and audits", 30*time.Second, func() error {
		l, err := lease(ctx)
		if err != nil {
			return err
		}
		if who := holder(l); who == first || who == "" {
			return fmt.Errorf("Lease still held by %q", who)
		}
		if runs, leads := follower.audits(t); !leads || runs == 0 {
			return fmt.Errorf("%s: leads=%v, audit runs %v", follower.name, leads, runs)
		}
		return nil
	})
	t.Logf("%s took over and audited %v after %s was killed", follower.name, time.Since(killed).Round(time.Millisecond), leader.name)
	load(t, []*replica{follower}, 4, 20, cut, harmless)
}
