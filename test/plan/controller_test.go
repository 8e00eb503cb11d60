//go:build e2e

package plan

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// designed resets the cluster to 30 nodes in 3 zones and plans them onto reflectors.
func designed(t *testing.T) {
	t.Helper()
	if err := h.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(t.Context(), harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	if out, code := rrguard(t, "plan", "--apply", "--pause", "200ms"); code != 0 {
		t.Fatalf("plan --apply: exit %d\n%s", code, out)
	}
	ensureNamespace(t)
}

// ensureNamespace creates the controller's namespace unless it exists.
func ensureNamespace(t *testing.T) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: harness.ControllerNamespace}}
	if err := h.Client.Get(t.Context(), client.ObjectKeyFromObject(ns), ns); err != nil {
		if err := h.Client.Create(t.Context(), ns); err != nil {
			t.Fatal(err)
		}
	}
}

// startController runs rrguard controller until the test ends; it returns the metrics URL.
func startController(t *testing.T, args ...string) string {
	t.Helper()
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"controller", "--namespace", harness.ControllerNamespace, "--leader-elect", "--cool-down", "1s", "--resync", "2s", "--grace", "0s",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--health-probe-bind-address", "0"}, args...)
	cmd := exec.Command(rrguardBin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.ControllerKubeconfig(t))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if l := <-logs; t.Failed() {
			t.Logf("controller log:\n%s", l)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
}

// setReady sets a node's Ready condition, as the node lifecycle controller does.
func setReady(t *testing.T, name string, status corev1.ConditionStatus) {
	t.Helper()
	if err := h.SetReady(t.Context(), name, status); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not within %s: %s", what, timeout, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func events(t *testing.T, reason string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := h.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Reason == reason && e.ReportingController == "rrguard-controller" {
			out = append(out, e.Regarding.Kind+"/"+e.Regarding.Name+": "+e.Note)
		}
	}
	return out
}

// TestControllerReplacesNotReady: a reflector goes NotReady; the controller peers a
// replacement in its zone first, then retires it, through the webhook; the audit ends clean.
func TestControllerReplacesNotReady(t *testing.T) {
	designed(t)
	const grace = 3 * time.Second
	metrics := startController(t, "--grace", grace.String())
	eventually(t, 30*time.Second, "the controller at rest", func() (bool, string) {
		v := harness.Metric(metrics, "rrguard_controller_pending_steps")
		return v == 0, fmt.Sprintf("pending steps %v", v)
	})
	lost := time.Now()
	setReady(t, "node-01", corev1.ConditionFalse) // a reflector of zone b
	eventually(t, 60*time.Second, "node-01 replaced", func() (bool, string) {
		n, err := h.Node(t.Context(), "node-01")
		if err != nil {
			return false, err.Error()
		}
		_, stillReflector := n.Annotations["projectcalico.org/RouteReflectorClusterID"]
		return !stillReflector && harness.Metric(metrics, "rrguard_controller_pending_steps") == 0, fmt.Sprintf("node-01 annotations %v", n.Annotations)
	})
	checkDesign(t)
	// And the webhook's own periodic audit reports nothing wrong.
	eventually(t, 30*time.Second, "a clean ClusterReport", func() (bool, string) {
		r := &unstructured.Unstructured{}
		r.SetAPIVersion("openreports.io/v1alpha1")
		r.SetKind("ClusterReport")
		if err := h.Client.Get(t.Context(), client.ObjectKey{Name: "rrguard"}, r); err != nil {
			return false, err.Error()
		}
		fail, hasFail, _ := unstructured.NestedInt64(r.Object, "summary", "fail")
		warn, hasWarn, _ := unstructured.NestedInt64(r.Object, "summary", "warn")
		return hasFail && hasWarn && fail == 0 && warn == 0, fmt.Sprintf("summary %v", r.Object["summary"])
	})
	applied := events(t, "StepApplied")
	if len(applied) != 2 || !strings.Contains(applied[0]+applied[1], "make node-07 a reflector of zone b") || !strings.Contains(applied[0]+applied[1], "retire reflector node-01") {
		t.Errorf("StepApplied events: %v", applied)
	}
	if v := harness.Metric(metrics, "rrguard_controller_steps_applied_total"); v != 2 {
		t.Errorf("steps applied: %v, want 2", v)
	}
	// Not before the grace period: a reboot is not a loss.
	if first := firstEventTime(t, "StepApplied"); first.Sub(lost) < grace {
		t.Errorf("first step %s after node-01 went NotReady, want at least the grace of %s", first.Sub(lost), grace)
	}
}

// firstEventTime is when the controller first sent an Event with this reason.
func firstEventTime(t *testing.T, reason string) time.Time {
	t.Helper()
	var list eventsv1.EventList
	if err := h.Client.List(t.Context(), &list); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, e := range list.Items {
		if e.Reason == reason && e.ReportingController == "rrguard-controller" && (first.IsZero() || e.EventTime.Time.Before(first)) {
			first = e.EventTime.Time
		}
	}
	return first
}

// TestControllerDryRunAndPause: --dry-run only reports; the pause annotation stops planning.
func TestControllerDryRunAndPause(t *testing.T) {
	designed(t)
	metrics := startController(t, "--dry-run")
	setReady(t, "node-02", corev1.ConditionFalse) // a reflector of zone c
	eventually(t, 30*time.Second, "a dry-run report", func() (bool, string) {
		ev := events(t, "PlannedSteps")
		return len(ev) > 0 && harness.Metric(metrics, "rrguard_controller_pending_steps") == 2, fmt.Sprintf("events %v", ev)
	})
	if ev := events(t, "PlannedSteps"); !strings.Contains(ev[0], "dry run: 2 step(s)") || !strings.Contains(ev[0], "retire reflector node-02") {
		t.Errorf("dry-run event: %v", ev)
	}
	n, err := h.Node(t.Context(), "node-02")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Annotations["projectcalico.org/RouteReflectorClusterID"]; !ok {
		t.Error("--dry-run retired node-02")
	}
	ns := &corev1.Namespace{}
	if err := h.Client.Get(t.Context(), client.ObjectKey{Name: harness.ControllerNamespace}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Annotations = map[string]string{"rrguard.io/controller-paused": "true"}
	if err := h.Client.Update(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		delete(ns.Annotations, "rrguard.io/controller-paused")
		_ = h.Client.Update(context.Background(), ns)
	})
	eventually(t, 30*time.Second, "paused", func() (bool, string) {
		v := harness.Metric(metrics, "rrguard_controller_paused")
		return v == 1, fmt.Sprintf("rrguard_controller_paused %v", v)
	})
}

// TestControllerReportsConflict: the replacement the controller would pick carries a field a
// user owns with another value; the controller reports the conflict, does not force it, and
// does not retire the lost reflector without its replacement.
func TestControllerReportsConflict(t *testing.T) {
	designed(t)
	// node-07 is zone b's next candidate; alice owns its cluster-ID annotation, empty.
	alice := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": "node-07", "annotations": map[string]any{"projectcalico.org/RouteReflectorClusterID": ""}},
	}}
	if err := h.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(alice), client.FieldOwner("alice")); err != nil {
		t.Fatal(err)
	}
	metrics := startController(t)
	setReady(t, "node-01", corev1.ConditionFalse)
	eventually(t, 30*time.Second, "a reported conflict", func() (bool, string) {
		v := harness.Metric(metrics, `rrguard_controller_step_failures_total{reason="conflict"}`)
		return v >= 1, fmt.Sprintf("conflicts %v, events %v", v, events(t, "StepFailed"))
	})
	failed := events(t, "StepFailed")
	if len(failed) == 0 || !strings.Contains(failed[0], "Node/node-07") || !strings.Contains(failed[0], "conflicts with another field manager") {
		t.Errorf("StepFailed events: %v", failed)
	}
	for _, name := range []string{"node-01", "node-07"} {
		n, err := h.Node(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		cid := n.Annotations["projectcalico.org/RouteReflectorClusterID"]
		if (name == "node-01") != (cid != "") {
			t.Errorf("%s has cluster ID %q: the lost reflector must stay until its replacement is in, alice's value must stay", name, cid)
		}
	}
}

// TestControllerLeavesTheMeshToPlan: with the mesh on, the controller says so and writes
// nothing; the migration is rrguard plan's.
func TestControllerLeavesTheMeshToPlan(t *testing.T) {
	if err := h.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(t.Context(), harness.ZoneNodes(9)); err != nil {
		t.Fatal(err)
	}
	ensureNamespace(t)
	metrics := startController(t)
	eventually(t, 30*time.Second, "a MeshOn event", func() (bool, string) {
		ev := events(t, "MeshOn")
		return len(ev) > 0 && harness.Metric(metrics, "rrguard_controller_pending_steps") > 0, fmt.Sprintf("events %v", ev)
	})
	state := liveState(t)
	if len(state.PeerNames()) != 0 || !state.Mesh() {
		t.Errorf("the controller wrote: peers %v, mesh on %v", state.PeerNames(), state.Mesh())
	}
	for _, name := range state.NodeNames() {
		if state.Node(name).ClusterID != "" {
			t.Errorf("the controller made %s a reflector", name)
		}
	}
}
