//go:build e2e

// Package audit proves the periodic audit live: a broken route-reflector state written
// directly into a real API server (no webhook in the way), rrguard started, the report, the
// metrics and `rrguard audit` agreeing, the report clearing once the state is fixed, and only
// the elected replica writing.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"
)

var (
	h      *harness.Harness
	cliBin string
)

const namespace = "rrguard-system"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	// Both report kinds rrguard writes, as config/crd ships them (test/deploy checks that the
	// OpenReports one is the module's).
	if h, err = harness.Start(harness.Options{CRDPaths: []string{"config/crd/openreports", "config/crd/wgpolicy"}, Namespaces: []string{namespace}}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	if cliBin, err = h.Build("./cmd/rrguard"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build rrguard: %v\n", err)
		return 1
	}
	return m.Run()
}

func objects(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range strings.Split(docs, "\n---\n") {
		var m map[string]interface{}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatal(err)
		}
		if m != nil {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
	return out
}

func node(name, ip string, extra string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {kubernetes.io/hostname: %s%s}, annotations: {projectcalico.org/IPv4Address: %s/24%s}}\nstatus: {conditions: [{type: Ready, status: \"True\"}]}\n---\n",
		name, name, labelsOf(extra), ip, annotationsOf(extra))
}

func labelsOf(extra string) string {
	if _, l, ok := strings.Cut(extra, "labels:"); ok {
		return ", " + strings.SplitN(l, ";", 2)[0]
	}
	return ""
}

func annotationsOf(extra string) string {
	if _, cid, ok := strings.Cut(extra, "cid:"); ok {
		return ", projectcalico.org/RouteReflectorClusterID: " + strings.SplitN(cid, ";", 2)[0]
	}
	return ""
}

func peer(name, nodeSel, peerSel string) string {
	return fmt.Sprintf("apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: %s}\nspec: {nodeSelector: %q, peerSelector: %q}\n---\n", name, nodeSel, peerSel)
}

// broken: two reflectors sharing a cluster ID with clients split between them (#2735), a
// node no peer selects while the mesh is off, and a peer whose reflector is gone.
var broken = node("r1", "10.20.0.1", "labels: rr: a;cid:1.0.0.1") + node("r2", "10.20.0.2", "labels: rr: b;cid:1.0.0.1") +
	node("c1", "10.20.0.3", "labels: side: a") + node("c2", "10.20.0.4", "labels: side: b") + node("lonely", "10.20.0.5", "labels: side: none") +
	peer("a", "side == 'a'", "rr == 'a'") + peer("b", "side == 'b'", "rr == 'b'") + peer("rr", "has(rr)", "has(rr)") +
	peer("to-gone", "side == 'a'", "rr == 'gone'") +
	"apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 64512}\n"

type result struct{ Policy, Result, Kind, Name string }

func (r result) String() string { return r.Policy + " " + r.Result + " " + r.Kind + "/" + r.Name }

// reportResults reads the report's results and summary.
func reportResults(ctx context.Context, kind, apiVersion, name string) ([]result, map[string]int64, *unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if err := h.Client.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		return nil, nil, nil, err
	}
	var out []result
	items, _, _ := unstructured.NestedSlice(u.Object, "results")
	for _, it := range items {
		m := it.(map[string]interface{})
		res := result{Policy: fmt.Sprint(m["policy"]), Result: fmt.Sprint(m["result"])}
		if rs, ok := m["resources"].([]interface{}); ok && len(rs) > 0 {
			r := rs[0].(map[string]interface{})
			res.Kind, res.Name = fmt.Sprint(r["kind"]), fmt.Sprint(r["name"])
		}
		out = append(out, res)
	}
	summary, _, _ := unstructured.NestedMap(u.Object, "summary")
	counts := map[string]int64{}
	for k, v := range summary {
		counts[k], _ = v.(int64)
	}
	sortResults(out)
	return out, counts, u, nil
}

func sortResults(rs []result) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].String() < rs[j].String() })
}

// cliResults runs `rrguard audit` on the live cluster.
func cliResults(t *testing.T) []result {
	t.Helper()
	cmd := exec.Command(cliBin, "audit", "--kubeconfig", h.Kubeconfig, "-o", "json")
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() == 2 {
		t.Fatalf("rrguard audit failed: %s", out)
	}
	var doc struct {
		Findings []struct{ Rule, Action, Kind, Name string } `json:"findings"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("rrguard audit -o json: %v\n%s", err, out)
	}
	var rs []result
	for _, f := range doc.Findings {
		r := result{Policy: f.Rule, Kind: f.Kind, Name: f.Name, Result: "warn"}
		if f.Action == "deny" {
			r.Result = "fail"
		}
		rs = append(rs, r)
	}
	sortResults(rs)
	return rs
}

func gauge(name string) float64 {
	families, _ := metrics.Registry.Gather()
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func startServer(t *testing.T, ctx context.Context, api string, leaderElect bool) *webhook.Server {
	t.Helper()
	_, dir := harness.ServingDir(t, "audit-test")
	opts := webhook.Options{Host: "127.0.0.1", Port: harness.FreePortFor(t), CertDir: dir, MetricsAddr: "0", ProbeAddr: "0",
		Config: validate.DefaultConfig(), LeaderElection: leaderElect, LeaderElectionNamespace: namespace}
	opts.Audit.Interval, opts.Audit.Debounce, opts.Audit.ReportAPI = 3*time.Second, 200*time.Millisecond, api
	srv, err := webhook.NewServer(ctx, h.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Start(ctx) }()
	return srv
}

func TestAuditReportsAndClears(t *testing.T) {
	for _, api := range []struct{ name, apiVersion, kind string }{
		{"openreports", "openreports.io/v1alpha1", "ClusterReport"},
		{"wgpolicy", "wgpolicyk8s.io/v1alpha2", "ClusterPolicyReport"},
	} {
		t.Run(api.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := h.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := h.Create(ctx, objects(t, broken)); err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, ctx, api.name, false)

			// The report lists exactly what `rrguard audit` finds, with the resources involved.
			var got []result
			var summary map[string]int64
			var report *unstructured.Unstructured
			harness.Eventually(t, "report written", 30*time.Second, func() error {
				var err error
				got, summary, report, err = reportResults(ctx, api.kind, api.apiVersion, "rrguard")
				if err != nil {
					return err
				}
				if len(got) == 0 {
					return fmt.Errorf("report has no results yet")
				}
				return nil
			})
			cli := cliResults(t)
			if fmt.Sprint(got) != fmt.Sprint(cli) {
				t.Errorf("report results\n  %v\nrrguard audit\n  %v", got, cli)
			}
			for _, want := range []result{
				{"cluster-id-consistency", "fail", "Node", "c1"},
				{"cluster-id-consistency", "fail", "Node", "c2"},
				{"selector-matches-nothing", "warn", "BGPPeer", "to-gone"},
			} {
				if !slices.Contains(got, want) {
					t.Errorf("report lacks %v:\n%v", want, got)
				}
			}
			lonely := false
			for _, r := range got {
				if r.Policy == "route-propagation" && r.Result == "fail" {
					lonely = true
				}
			}
			if !lonely {
				t.Errorf("report lacks the route-propagation failure (lonely has no session): %v", got)
			}
			if summary["fail"]+summary["warn"] != int64(len(got)) {
				t.Errorf("summary %v does not count the %d results", summary, len(got))
			}
			// Metrics match the report.
			if v := gauge("rrguard_audit_violations"); int64(v) != summary["fail"]+summary["warn"] {
				t.Errorf("rrguard_audit_violations = %v, report counts %d", v, summary["fail"]+summary["warn"])
			}
			if v := gauge("rrguard_nodes_without_routes"); v < 1 {
				t.Errorf("rrguard_nodes_without_routes = %v, want at least lonely", v)
			}
			uid := report.GetUID()
			if testing.Verbose() {
				raw, _ := yaml.Marshal(report.Object)
				t.Logf("report:\n%s", raw)
			}

			// Events on the objects involved.
			harness.Eventually(t, "events", 15*time.Second, func() error {
				var list eventsv1.EventList
				if err := h.Client.List(ctx, &list); err != nil {
					return err
				}
				for _, e := range list.Items {
					if e.Regarding.Kind == "Node" && e.Regarding.Name == "c1" && e.Reason == "ClusterIdConsistency" {
						return nil
					}
				}
				return fmt.Errorf("no ClusterIdConsistency event on Node c1 among %d events", len(list.Items))
			})

			// Fix it: every client peers with both reflectors, the lonely node too, the stale peer goes.
			for _, name := range []string{"a", "b", "to-gone"} {
				p := &unstructured.Unstructured{}
				p.SetAPIVersion("crd.projectcalico.org/v1")
				p.SetKind("BGPPeer")
				p.SetName(name)
				if err := h.Client.Delete(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Create(ctx, objects(t, peer("clients", "!has(rr)", "has(rr)"))); err != nil {
				t.Fatal(err)
			}
			harness.Eventually(t, "report cleared", 3*time.Second+5*time.Second, func() error {
				var err error
				got, summary, report, err = reportResults(ctx, api.kind, api.apiVersion, "rrguard")
				if err != nil {
					return err
				}
				if len(got) > 0 {
					return fmt.Errorf("still %v", got)
				}
				return nil
			})
			if report.GetUID() != uid {
				t.Error("the report was recreated instead of updated in place")
			}
			if v := gauge("rrguard_audit_violations"); v != 0 {
				t.Errorf("rrguard_audit_violations = %v after the fix", v)
			}
			if cli := cliResults(t); len(cli) != 0 {
				t.Errorf("rrguard audit still finds %v", cli)
			}
			if srv.Auditor.Runs() == 0 {
				t.Error("no audit ran")
			}
			cancel()
			time.Sleep(200 * time.Millisecond)
		})
	}
}

// TestOnlyTheLeaderWrites runs two replicas with leader election: one audits, the other
// serves admission only.
func TestOnlyTheLeaderWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, objects(t, broken)); err != nil {
		t.Fatal(err)
	}
	a := startServer(t, ctx, "openreports", true)
	b := startServer(t, ctx, "openreports", true)
	harness.Eventually(t, "a leader audits", 60*time.Second, func() error {
		if a.Auditor.Runs()+b.Auditor.Runs() == 0 {
			return fmt.Errorf("no audit yet")
		}
		return nil
	})
	harness.Eventually(t, "both replicas ready", 30*time.Second, func() error {
		if !a.Synced() || !b.Synced() {
			return fmt.Errorf("synced: %v %v", a.Synced(), b.Synced())
		}
		return nil
	})
	time.Sleep(4 * time.Second) // more than an audit interval
	ra, rb := a.Auditor.Runs(), b.Auditor.Runs()
	if (ra == 0) == (rb == 0) {
		t.Errorf("audit runs: replica a %d, replica b %d; want exactly one replica auditing", ra, rb)
	}
}
