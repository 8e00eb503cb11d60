//go:build e2e

package calicoapiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/test/harness"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControllerReplacesNotReadyThroughCalicoAPIServer: 30 nodes in 3 zones designed by
// `rrguard plan --apply`, its BGPPeers and mesh switch written as projectcalico.org/v3 through
// calico-apiserver; `rrguard controller`, as its ServiceAccount with
// config/components/controller's RBAC, reads that design through calico-apiserver (the group
// the cluster serves). A reflector goes NotReady: after --grace the controller peers a
// replacement in its zone, then retires the lost one, each write allowed by rrguard, and
// writes no Calico object (it read the zone's BGPPeer right); the cluster's audit ends clean.
func TestControllerReplacesNotReadyThroughCalicoAPIServer(t *testing.T) {
	bin, err := harness.Build(h.RootDir, "./cmd/rrguard", dir)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Reset(ctx); err != nil {
			t.Errorf("reset after the test: %v", err)
		}
	})
	if err := h.Create(ctx, harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"nodeToNodeMeshEnabled": true, "asNumber": int64(64512)},
	}}
	if err := h.Client.Create(ctx, cfg, client.FieldOwner("calico-install")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "plan", "--apply", "--pause", "200ms")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "the cluster's audit: 0 deny, 0 warn") {
		t.Fatalf("rrguard plan --apply: %v\n%s", err, out)
	}
	before := reflectors(ctx, t)
	zoneB := before["b"]
	if len(zoneB) < 2 {
		t.Fatalf("zone b has reflectors %v after the plan, want at least 2", zoneB)
	}
	lostName := zoneB[0]

	const grace = 3 * time.Second
	metrics := startController(t, bin, "--grace", grace.String())
	eventuallyBy(ctx, t, "the controller at rest", func() (bool, string) {
		v := harness.Metric(metrics, "rrguard_controller_pending_steps")
		return v == 0, fmt.Sprintf("pending steps %v", v)
	})
	mark := rec.mark()
	lost := time.Now()
	setReady(ctx, t, lostName, corev1.ConditionFalse)
	var replacement string
	eventuallyBy(ctx, t, lostName+" replaced", func() (bool, string) {
		now := reflectors(ctx, t)
		replacement = ""
		for _, name := range now["b"] {
			if !slices.Contains(zoneB, name) {
				replacement = name
			}
		}
		pending := harness.Metric(metrics, "rrguard_controller_pending_steps")
		return !slices.Contains(now["b"], lostName) && replacement != "" && pending == 0,
			fmt.Sprintf("zone b reflectors %v (were %v), pending steps %v", now["b"], zoneB, pending)
	})
	t.Logf("%s went NotReady; the controller made %s a reflector of zone b and retired %s in %s",
		lostName, replacement, lostName, time.Since(lost).Round(time.Millisecond))

	after := reflectors(ctx, t)
	wantB := slices.Sorted(slices.Values(append(slices.DeleteFunc(slices.Clone(zoneB), func(n string) bool { return n == lostName }), replacement)))
	for z, want := range map[string][]string{"a": before["a"], "b": wantB, "c": before["c"]} {
		if !slices.Equal(after[z], want) {
			t.Errorf("zone %s reflectors %v, want %v (were %v)", z, after[z], want, before[z])
		}
	}
	if n, err := h.Node(ctx, replacement); err != nil {
		t.Fatal(err)
	} else if n.Labels["topology.kubernetes.io/zone"] != "b" || nodeReady(n) != corev1.ConditionTrue {
		t.Errorf("replacement %s: zone %q, Ready %q", replacement, n.Labels["topology.kubernetes.io/zone"], nodeReady(n))
	}
	if v := harness.Metric(metrics, "rrguard_controller_steps_applied_total"); v != 2 {
		t.Errorf("steps applied: %v, want 2", v)
	}
	applied, first := controllerEvents(ctx, t, "StepApplied", started)
	joined := strings.Join(applied, "\n")
	if len(applied) != 2 || !strings.Contains(joined, "make "+replacement+" a reflector of zone b") || !strings.Contains(joined, "retire reflector "+lostName) {
		t.Errorf("StepApplied events: %v", applied)
	}
	if d := first.Sub(lost); d < grace {
		t.Errorf("first step %s after %s went NotReady, want at least the grace of %s", d, lostName, grace)
	}

	// Every review meanwhile allowed; the controller's: its two Node writes, the replacement
	// first, and no Calico object (through calico-apiserver or its CRDs).
	reviews := judgements(rec.since(mark)).validating()
	var mine judgements
	for _, j := range reviews {
		if !j.Allowed {
			t.Errorf("refused while the controller repaired zone b: %s", j)
		}
		if j.User == harness.ControllerUser {
			mine = append(mine, j)
		}
	}
	var nodes []string
	for _, j := range mine {
		if j.Group != "" || j.Resource != "nodes" {
			t.Errorf("the controller wrote a Calico object: %s", j)
			continue
		}
		if len(nodes) == 0 || nodes[len(nodes)-1] != j.Name {
			nodes = append(nodes, j.Name)
		}
	}
	if !slices.Equal(nodes, []string{replacement, lostName}) {
		t.Errorf("the controller's writes rrguard judged: %s; want %s's, then %s's", mine, replacement, lostName)
	}
	t.Logf("rrguard asked %d times meanwhile, %d about the controller's writes: %s", len(reviews), len(mine), mine)

	// The cluster's audit, as a user runs it (BGPPeers and BGPConfiguration read as
	// projectcalico.org/v3 through calico-apiserver).
	cmd = exec.CommandContext(ctx, bin, "audit", "--kubeconfig", h.Kubeconfig, "-o", "json")
	out, err := cmd.Output()
	var doc struct {
		Findings []struct{ Rule, Action, Kind, Name, Message string } `json:"findings"`
		Summary  struct{ Deny, Warn int }                             `json:"summary"`
	}
	if jerr := json.Unmarshal(out, &doc); jerr != nil {
		t.Fatalf("rrguard audit -o json: %v, %v\n%s", err, jerr, out)
	}
	if err != nil || doc.Summary.Deny != 0 || doc.Summary.Warn != 0 {
		t.Errorf("rrguard audit after the repair: %v, %d deny, %d warn: %+v", err, doc.Summary.Deny, doc.Summary.Warn, doc.Findings)
	}
	t.Logf("the test took %s", time.Since(started).Round(time.Millisecond))
}

// reflectors reads the live cluster as rrguard audit does (the Calico objects through
// calico-apiserver) and returns the nodes with a cluster ID in each zone, sorted.
func reflectors(ctx context.Context, t *testing.T) map[string][]string {
	t.Helper()
	objs, _, err := cluster.LoadLiveObjects(ctx, h.Client)
	if err != nil {
		t.Fatal(err)
	}
	state := calico.NewState(objs)
	out := map[string][]string{}
	for _, name := range state.NodeNames() {
		n := state.Node(name)
		if n.ClusterID != "" {
			z := n.Labels()["topology.kubernetes.io/zone"]
			out[z] = append(out[z], name)
		}
	}
	return out
}

// startController runs `rrguard controller` as its ServiceAccount until the test ends; it
// returns the metrics URL.
func startController(t *testing.T, bin string, args ...string) string {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"controller", "--namespace", harness.ControllerNamespace, "--cool-down", "1s", "--resync", "2s",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--health-probe-bind-address", "0"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.ControllerKubeconfig(t))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("controller log (last lines):\n%s", lastLines(log.String(), 40))
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
}

// setReady sets a node's Ready condition, as the node lifecycle controller does.
func setReady(ctx context.Context, t *testing.T, name string, status corev1.ConditionStatus) {
	t.Helper()
	if err := h.SetReady(ctx, name, status); err != nil {
		t.Fatal(err)
	}
}

func nodeReady(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// eventuallyBy polls cond until it holds, failing the test when ctx ends first.
func eventuallyBy(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not by the test's deadline: %s", what, state)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// controllerEvents returns the notes of the controller's Events with this reason sent since,
// and when the first was sent.
func controllerEvents(ctx context.Context, t *testing.T, reason string, since time.Time) ([]string, time.Time) {
	t.Helper()
	var list eventsv1.EventList
	if err := h.Client.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	var first time.Time
	for _, e := range list.Items {
		if e.Reason != reason || e.ReportingController != "rrguard-controller" || e.EventTime.Time.Before(since) {
			continue
		}
		out = append(out, e.Regarding.Kind+"/"+e.Regarding.Name+": "+e.Note)
		if first.IsZero() || e.EventTime.Time.Before(first) {
			first = e.EventTime.Time
		}
	}
	return out, first
}
