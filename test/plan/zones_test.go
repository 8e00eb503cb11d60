//go:build e2e

package plan

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchNode merge-patches a Node through the API server (and so through rrguard's webhook).
func patchNode(t *testing.T, name, patch string) {
	t.Helper()
	n := &corev1.Node{}
	n.Name = name
	if err := h.Client.Patch(t.Context(), n, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatalf("patch node %s with %s: %v", name, patch, err)
	}
}

// zoneOf names the nodes of a zone of harness.ZoneNodes(30).
func zoneOf(zone string) []string {
	var out []string
	for i := int(zone[0] - 'a'); i < 30; i += 3 {
		out = append(out, fmt.Sprintf("node-%02d", i))
	}
	return out
}

// reflectorsOf returns the nodes of a zone that hold a cluster ID now.
func reflectorsOf(t *testing.T, zone string) []string {
	t.Helper()
	var list corev1.NodeList
	if err := h.Client.List(t.Context(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range list.Items {
		if n.Labels["topology.kubernetes.io/zone"] == zone && n.Annotations["projectcalico.org/RouteReflectorClusterID"] != "" {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// eventsSince returns the controller's Events with this reason sent since a time (Events
// outlive the Nodes Reset deletes).
func eventsSince(t *testing.T, reason string, since time.Time) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := h.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Reason == reason && e.ReportingController == "rrguard-controller" && !e.EventTime.Time.Before(since.Truncate(time.Second)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b eventsv1.Event) int { return a.EventTime.Time.Compare(b.EventTime.Time) })
	return out
}

// TestControllerHealsZonesOnTheirOwn is the probe's case: zone a has no node that may be a
// reflector (cordoned for maintenance, or labelled spot by someone with Node-label rights
// only), then a reflector of zone b goes NotReady. The controller reports zone a (a ZoneHeld
// Event, rrguard_controller_zone_held) and leaves it as it is, and replaces zone b's reflector
// as fast as it would with zone a healthy.
func TestControllerHealsZonesOnTheirOwn(t *testing.T) {
	for _, tc := range []struct {
		name, patch, why string
		args             []string
	}{
		{"zone a cordoned", `{"spec":{"unschedulable":true}}`, "10 cordoned", nil},
		{"zone a labelled spot", `{"metadata":{"labels":{"lifecycle":"spot"}}}`, "10 excluded (--exclude)", []string{"--exclude", "lifecycle == 'spot'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			designed(t)
			start := time.Now()
			for _, name := range zoneOf("a") {
				patchNode(t, name, tc.patch)
			}
			const grace = 3 * time.Second
			metrics := startController(t, append([]string{"--grace", grace.String()}, tc.args...)...)
			eventually(t, 30*time.Second, "zone a reported held", func() (bool, string) {
				ev := eventsSince(t, "ZoneHeld", start)
				v := harness.Metric(metrics, `rrguard_controller_zone_held{zone="a"}`)
				return len(ev) > 0 && v == 1 && harness.Metric(metrics, "rrguard_controller_pending_steps") == 0, fmt.Sprintf("events %d, held metric %v", len(ev), v)
			})
			if note := eventsSince(t, "ZoneHeld", start)[0].Note; !strings.Contains(note, "zone a is left as it is") || !strings.Contains(note, tc.why) {
				t.Errorf("ZoneHeld event: %q, want zone a and %q", note, tc.why)
			}
			lost := time.Now()
			setReady(t, "node-01", corev1.ConditionFalse)
			var replaced time.Duration
			eventually(t, 60*time.Second, "node-01 replaced and retired", func() (bool, string) {
				rr := reflectorsOf(t, "b")
				if replaced == 0 && slices.Contains(rr, "node-07") {
					replaced = time.Since(lost)
				}
				return slices.Equal(rr, []string{"node-04", "node-07"}) && harness.Metric(metrics, "rrguard_controller_pending_steps") == 0, fmt.Sprintf("zone b's reflectors %v", rr)
			})
			done := time.Since(lost)
			t.Logf("zone a held; node-01 NotReady → replacement node-07 peered after %s, node-01 retired after %s (--grace %s, --cool-down 1s)", replaced.Round(100*time.Millisecond), done.Round(100*time.Millisecond), grace)
			if done > 20*time.Second {
				t.Errorf("zone b repaired after %s: a blocked zone a slowed it down", done)
			}
			if rr := reflectorsOf(t, "a"); !slices.Equal(rr, []string{"node-00", "node-03"}) {
				t.Errorf("zone a's reflectors %v: a held zone must be left as it is", rr)
			}
			if ev := eventsSince(t, "NoSafePlan", start); len(ev) > 0 {
				t.Errorf("NoSafePlan for the whole cluster: %s", ev[0].Note)
			}
			checkDesign(t)
		})
	}
}

// TestControllerFlapping is the probe's case: nodes of zone c flap every few seconds (a
// reflector cordoned and uncordoned, the other going NotReady and back, zone c's candidates
// relabelled spot or cordoned). Each reflector is replaced once, no flapping node is made a
// reflector, zone c never has more than --max-per-zone reflectors, and the controller stops
// moving anything while the flapping goes on.
func TestControllerFlapping(t *testing.T) {
	designed(t)
	metrics := startController(t, "--grace", "2s", "--settle", "5m", "--max-per-zone", "3", "--exclude", "lifecycle == 'spot'")
	eventually(t, 30*time.Second, "the controller at rest", func() (bool, string) {
		v := harness.Metric(metrics, "rrguard_controller_pending_steps")
		return v == 0, fmt.Sprintf("pending steps %v", v)
	})
	type flapper struct {
		node          string
		period, bad   time.Duration
		onBad, onGood func()
	}
	cordon := func(name string, on bool) func() {
		return func() { patchNode(t, name, fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, on)) }
	}
	readiness := func(name string, s corev1.ConditionStatus) func() { return func() { setReady(t, name, s) } }
	spot := func(name, v string) func() {
		return func() { patchNode(t, name, fmt.Sprintf(`{"metadata":{"labels":{"lifecycle":%s}}}`, v)) }
	}
	flappers := []flapper{
		{"node-02", 7 * time.Second, 4 * time.Second, cordon("node-02", true), cordon("node-02", false)},
		{"node-05", 7 * time.Second, 4 * time.Second, readiness("node-05", corev1.ConditionFalse), readiness("node-05", corev1.ConditionTrue)},
		{"node-08", 6 * time.Second, 3 * time.Second, spot("node-08", `"spot"`), spot("node-08", "null")},
		{"node-11", 5 * time.Second, 2 * time.Second, cordon("node-11", true), cordon("node-11", false)},
	}
	const flapping = 40 * time.Second
	start := time.Now()
	var mu sync.Mutex
	most := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		// Zone c's reflectors, four times a second, while the nodes flap.
		defer wg.Done()
		for time.Since(start) < flapping {
			n := len(reflectorsOf(t, "c"))
			mu.Lock()
			most = max(most, n)
			mu.Unlock()
			time.Sleep(250 * time.Millisecond)
		}
	}()
	bad := map[string]bool{}
	for time.Since(start) < flapping {
		for _, f := range flappers {
			now := time.Since(start)%f.period < f.bad
			if now != bad[f.node] || time.Since(start) < 500*time.Millisecond {
				if now {
					f.onBad()
				} else {
					f.onGood()
				}
				bad[f.node] = now
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	for _, f := range flappers {
		f.onGood()
	}
	applied := eventsSince(t, "StepApplied", start)
	var log []string
	for _, e := range applied {
		log = append(log, fmt.Sprintf("%s: %s", e.EventTime.Time.Sub(start).Round(100*time.Millisecond), e.Note))
	}
	t.Logf("%s of flapping: zone c had at most %d reflectors; %d steps applied:\n%s", flapping, most, len(applied), strings.Join(log, "\n"))
	if most > 3 {
		t.Errorf("zone c had %d reflectors, --max-per-zone is 3", most)
	}
	if len(applied) > 4 {
		t.Errorf("%d steps applied while nodes flapped, want at most 4: each reflector replaced and retired once", len(applied))
	}
	if len(applied) > 0 && applied[len(applied)-1].EventTime.Time.Sub(start) > flapping/2 {
		t.Errorf("still moving reflectors %s into the flapping", applied[len(applied)-1].EventTime.Time.Sub(start))
	}
	eventually(t, 30*time.Second, "the controller at rest", func() (bool, string) {
		v := harness.Metric(metrics, "rrguard_controller_pending_steps")
		return v == 0, fmt.Sprintf("pending steps %v", v)
	})
	rr := reflectorsOf(t, "c")
	for _, f := range flappers {
		if slices.Contains(rr, f.node) {
			t.Errorf("flapping %s is a reflector of zone c: %v", f.node, rr)
		}
	}
	if len(rr) != 2 {
		t.Errorf("zone c's reflectors %v, want 2", rr)
	}
	checkDesign(t)
}

// TestApplyInterruptedThenDrift is the probe's case: rrguard plan --apply is killed after it
// turned the mesh off and before the reflector peering narrows, then a client moves to a new
// zone d. Planning again finds the safe plan (zone d's node becomes its reflector before the
// narrowing), and --apply finishes it through the webhook with a clean audit.
func TestApplyInterruptedThenDrift(t *testing.T) {
	if err := h.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(t.Context(), harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), rrguardBin, "plan", "--apply", "--pause", "1s")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "step 11/12 applied") {
			_ = cmd.Process.Kill()
			break
		}
	}
	_ = cmd.Wait()
	if !strings.Contains(out.String(), "step 11/12 applied: turn the node-to-node mesh off") || strings.Contains(out.String(), "step 12/12") {
		t.Fatalf("want --apply killed after the mesh step:\n%s", out.String())
	}
	patchNode(t, "node-10", `{"metadata":{"labels":{"topology.kubernetes.io/zone":"d"}}}`)
	text, code := rrguard(t, "plan")
	made, narrowed := strings.Index(text, "make node-10 a reflector of zone d"), strings.Index(text, "peer the reflectors with one another")
	if code != 0 || made < 0 || narrowed < made {
		t.Fatalf("plan after the drift: exit %d, want node-10 made zone d's reflector before the narrowing:\n%s", code, text)
	}
	text, code = rrguard(t, "plan", "--apply", "--pause", "200ms")
	if code != 0 || !strings.Contains(text, "all 2 steps applied; the cluster's audit: 0 deny, 0 warn") {
		t.Fatalf("plan --apply after the drift: exit %d\n%s", code, text)
	}
	if rr := reflectorsOf(t, "d"); !slices.Equal(rr, []string{"node-10"}) {
		t.Errorf("zone d's reflectors %v", rr)
	}
	checkDesign(t)
}

// TestApplyHoldsBlockedZone: rrguard plan --apply with zone a cordoned and a reflector of zone
// b NotReady repairs zone b, leaves zone a as it is, and exits 1 naming zone a and why.
func TestApplyHoldsBlockedZone(t *testing.T) {
	designed(t)
	for _, name := range zoneOf("a") {
		patchNode(t, name, `{"spec":{"unschedulable":true}}`)
	}
	setReady(t, "node-01", corev1.ConditionFalse)
	text, code := rrguard(t, "plan", "--apply", "--pause", "200ms")
	if code != 1 || !strings.Contains(text, "zone a is held") || !strings.Contains(text, "all 2 steps applied") ||
		!strings.Contains(text, "no safe plan for 1 zone(s), left as they are while the plan repairs the others: zone a: none of its 10 node(s) can be a reflector (10 cordoned)") {
		t.Fatalf("plan --apply: exit %d, want 1 with zone b repaired and zone a named:\n%s", code, text)
	}
	if rr := reflectorsOf(t, "b"); !slices.Equal(rr, []string{"node-04", "node-07"}) {
		t.Errorf("zone b's reflectors %v", rr)
	}
	if rr := reflectorsOf(t, "a"); !slices.Equal(rr, []string{"node-00", "node-03"}) {
		t.Errorf("zone a's reflectors %v", rr)
	}
}
