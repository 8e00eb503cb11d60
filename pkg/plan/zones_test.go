package plan_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/plan"
	corev1 "k8s.io/api/core/v1"
)

// edit returns the objects with the named core Nodes changed by mod.
func edit(objs []*calico.Object, mod func(k *corev1.Node), names ...string) []*calico.Object {
	out := slices.Clone(objs)
	for i, o := range out {
		if o.CoreNode != nil && slices.Contains(names, o.Name) {
			k := o.CoreNode.DeepCopy()
			k.Labels = maps.Clone(k.Labels)
			mod(k)
			out[i] = calico.NodeObject(k)
		}
	}
	return out
}

func cordon(k *corev1.Node)   { k.Spec.Unschedulable = true }
func notReady(k *corev1.Node) { k.Status.Conditions[0].Status = corev1.ConditionFalse }
func spot(k *corev1.Node)     { k.Labels["lifecycle"] = "spot" }

// zoneNodes names the nodes of a zone of cluster(30, "a", "b", "c").
func zoneNodes(zone string) []string {
	var out []string
	for i := int(zone[0] - 'a'); i < 30; i += 3 {
		out = append(out, plan30Name(i))
	}
	return out
}

func plan30Name(i int) string { return "node-0" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// heldAndOthers checks a plan that holds one zone: the zone's reason, no step touching the
// zone's nodes or BGPPeer, the replay of every step as the webhook judges it, and the held
// zone's reflectors as they were.
func heldAndOthers(t *testing.T, objs []*calico.Object, p *plan.Plan, zone, why string) []*calico.Object {
	t.Helper()
	held := p.Held()
	if len(held) != 1 || held[0].Name != zone || !strings.Contains(held[0].Held, why) {
		for _, z := range held {
			t.Errorf("held: zone %s: %s", z.Name, z.Held)
		}
		t.Fatalf("want zone %s held saying %q", zone, why)
	}
	for _, s := range p.Steps {
		if slices.Contains(zoneNodes(zone), s.Name) || s.Name == "rrguard-zone-"+zone {
			t.Errorf("step %d touches held zone %s: %s", s.Number, zone, s.Summary)
		}
	}
	before := reflectorsByZone(objs)[zone]
	final := replayKeeping(t, objs, p, noWarning, denied(t, objs))
	if after := reflectorsByZone(final)[zone]; !slices.Equal(before, after) {
		t.Errorf("held zone %s's reflectors went from %v to %v", zone, before, after)
	}
	return final
}

// TestBlockedZoneIsHeld is the probe's case: zone a has no eligible node (cordoned for
// maintenance, or labelled spot by someone with Node-label rights only), then a reflector of
// zone b goes NotReady. Zone a is held and reported; zone b gets its replacement first, then
// the lost reflector retires.
func TestBlockedZoneIsHeld(t *testing.T) {
	for name, tc := range map[string]struct {
		block func(k *corev1.Node)
		opts  plan.Options
		why   string
	}{
		"zone a cordoned":                     {cordon, plan.Options{}, "none of its 10 node(s) can be a reflector (10 cordoned)"},
		"zone a labelled spot, spot excluded": {spot, plan.Options{Exclude: "lifecycle == 'spot'"}, "none of its 10 node(s) can be a reflector (10 excluded (--exclude))"},
	} {
		t.Run(name, func(t *testing.T) {
			objs := edit(planned(t), tc.block, zoneNodes("a")...)
			objs = edit(objs, notReady, "node-001")
			p, err := makePlan(t, objs, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"make node-007 a reflector of zone b", "retire reflector node-001 of zone b (NotReady)"}; len(p.Steps) != 2 ||
				!strings.HasPrefix(p.Steps[0].Summary, want[0]) || !strings.HasPrefix(p.Steps[1].Summary, want[1]) {
				t.Errorf("steps %v, want %v", stepsOf(p), want)
			}
			final := heldAndOthers(t, objs, p, "a", tc.why)
			if rr := reflectorsByZone(final)["b"]; !slices.Equal(rr, []string{"node-004", "node-007"}) {
				t.Errorf("zone b's reflectors after the plan: %v", rr)
			}
			// The only deny finding left is none: zone a's cordoned reflectors still work.
			for _, f := range engine.Audit(t.Context(), model.NewSnapshot(calico.NewState(final))) {
				t.Errorf("after the plan: [%s] %s %s", f.Action, f.Rule, f.Message)
			}
			// Planning again: zone a still held, nothing else to do.
			again, err := makePlan(t, final, tc.opts)
			if err != nil || len(again.Steps) != 0 || len(again.Held()) != 1 {
				t.Errorf("planning the result again: steps %v, error %v", stepsOf(again), err)
			}
		})
	}
}

// TestHeldZoneBesideRoutesLost: zone a cordoned and one of its reflectors NotReady (its
// clients are down to one reflector, which no step can fix there); zone c's reflector lost
// too. Zone c is repaired, zone a's finding stays as a note, not a refusal of the whole plan.
func TestHeldZoneBesideRoutesLost(t *testing.T) {
	objs := edit(planned(t), cordon, zoneNodes("a")...)
	objs = edit(objs, notReady, "node-000", "node-002")
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	heldAndOthers(t, objs, p, "a", "cordoned")
	if len(p.Steps) != 2 || !strings.Contains(p.Steps[0].Summary, "of zone c") {
		t.Errorf("steps %v, want zone c's replacement and retirement", stepsOf(p))
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "zone a is held") }) {
		t.Errorf("notes %v: want zone a's remaining finding named", p.Notes)
	}
}

// TestNoSafeStepHoldsTheZone: with --max-per-zone equal to --reflectors-per-zone, a cordoned
// (still working) reflector cannot be replaced: the replacement would pass the cap, and
// retiring it first would leave its clients one reflector. Zone b is held with that reason;
// zone c's NotReady reflector, whose retirement loses nothing, retires first and is replaced.
func TestNoSafeStepHoldsTheZone(t *testing.T) {
	objs := edit(planned(t), cordon, "node-001")
	objs = edit(objs, notReady, "node-002")
	opts := plan.Options{MaxPerZone: 2}
	p, err := makePlan(t, objs, opts)
	if err != nil {
		t.Fatal(err)
	}
	final := heldAndOthers(t, objs, p, "b", "zone b has 2 reflectors (--max-per-zone 2): one must retire before node-007 is made one")
	if want := []string{"retire reflector node-002 of zone c (NotReady)", "make node-008 a reflector of zone c"}; len(p.Steps) != 2 ||
		!strings.HasPrefix(p.Steps[0].Summary, want[0]) || !strings.HasPrefix(p.Steps[1].Summary, want[1]) {
		t.Errorf("steps %v, want %v", stepsOf(p), want)
	}
	if rr := reflectorsByZone(final)["c"]; !slices.Equal(rr, []string{"node-005", "node-008"}) {
		t.Errorf("zone c's reflectors: %v", rr)
	}
}

// TestMaxPerZoneNeverExceeded: a zone already at the cap (5 reflectors, four of them cordoned:
// what flapping left) needs one new reflector; the plan retires before it adds, so no state
// along the way has more than --max-per-zone reflectors in a zone.
func TestMaxPerZoneNeverExceeded(t *testing.T) {
	objs := planned(t)
	extra := []string{"node-008", "node-011", "node-014"}
	for _, name := range extra {
		i := slices.IndexFunc(objs, func(o *calico.Object) bool { return o.Name == name })
		objs = edit(objs, func(k *corev1.Node) {
			k.Labels["route-reflector"] = "true"
			k.Annotations[calico.AnnotationClusterID] = objs[slices.IndexFunc(objs, func(o *calico.Object) bool { return o.Name == "node-002" })].Node.ClusterID
		}, objs[i].Name)
	}
	objs = edit(objs, cordon, "node-002", "node-005", "node-008", "node-011")
	if rr := reflectorsByZone(objs)["c"]; len(rr) != 5 {
		t.Fatalf("zone c starts with %v", rr)
	}
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	state := objs
	most := 0
	for _, s := range p.Steps {
		state, _ = applyStep(t, state, s)
		most = max(most, len(reflectorsByZone(state)["c"]))
	}
	if most > 5 {
		t.Errorf("zone c reached %d reflectors along the plan, --max-per-zone is 5: %v", most, stepsOf(p))
	}
	final := replay(t, objs, p, noWarning)
	if rr := reflectorsByZone(final)["c"]; !slices.Equal(rr, []string{"node-014", "node-017"}) {
		t.Errorf("zone c's reflectors: %v", rr)
	}
}

// TestInterruptedApplyWithDrift is the probe's case: rrguard plan --apply stopped after any
// of its steps, then a client moves to a new zone d. Planning again finds the safe plan that
// exists (zone d's node becomes its reflector before the reflector peering narrows), and
// its result plans to nothing.
func TestInterruptedApplyWithDrift(t *testing.T) {
	start := cluster(30, "a", "b", "c")
	full, err := makePlan(t, start, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < len(full.Steps); k++ {
		objs := start
		for _, s := range full.Steps[:k] {
			objs, _ = applyStep(t, objs, s)
		}
		objs = edit(objs, func(n *corev1.Node) { n.Labels["topology.kubernetes.io/zone"] = "d" }, "node-010")
		p, err := makePlan(t, objs, plan.Options{})
		if err != nil {
			t.Fatalf("interrupted after step %d, node-010 moved to zone d: %v", k, err)
		}
		final := replay(t, objs, p, func(step int, w string) bool { return k == 1 && onlyFirstPeerSelectsNothing(1, w) })
		state := calico.NewState(final)
		if state.Mesh() {
			t.Errorf("after step %d: the mesh is still on at the end", k)
		}
		if rr := reflectorsByZone(final)["d"]; !slices.Equal(rr, []string{"node-010"}) {
			t.Errorf("after step %d: zone d's reflectors %v", k, rr)
		}
		for _, f := range engine.Audit(t.Context(), model.NewSnapshot(state)) {
			t.Errorf("after step %d: final state: [%s] %s %s", k, f.Action, f.Rule, f.Message)
		}
		if again, err := makePlan(t, final, plan.Options{}); err != nil || len(again.Steps) != 0 {
			t.Errorf("after step %d: planning the result again: %v, %v", k, stepsOf(again), err)
		}
	}
}

// TestGraceAndSettle: the controller's memory laid over the nodes. A reflector lost within
// --grace stays, without holding up another zone's repair; a node unfit within --settle is not
// picked; a reflector that was lost and looks fit again is still replaced and retired.
func TestGraceAndSettle(t *testing.T) {
	objs := edit(planned(t), notReady, "node-001", "node-002")
	p, err := makePlan(t, objs, plan.Options{InGrace: map[string]bool{"node-001": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		if !strings.Contains(s.Summary, "of zone c") {
			t.Errorf("step %d moves zone b's reflector within its grace: %s", s.Number, s.Summary)
		}
	}
	if len(p.Steps) != 2 {
		t.Errorf("steps %v, want zone c's replacement and retirement", stepsOf(p))
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "1 lost reflector(s) are within --grace") }) {
		t.Errorf("notes %v", p.Notes)
	}
	replayKeeping(t, objs, p, noWarning, denied(t, objs))

	objs = edit(planned(t), notReady, "node-001")
	p, err = makePlan(t, objs, plan.Options{Unsettled: map[string]bool{"node-007": true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) == 0 || !strings.HasPrefix(p.Steps[0].Summary, "make node-010 a reflector of zone b") {
		t.Errorf("steps %v, want node-010 (node-007 is not settled)", stepsOf(p))
	}

	objs = planned(t)
	p, err = makePlan(t, objs, plan.Options{Unsettled: map[string]bool{"node-004": true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"make node-007 a reflector of zone b", "retire reflector node-004 of zone b (" + plan.UnsettledReason + ")"}; len(p.Steps) != 2 ||
		!strings.HasPrefix(p.Steps[0].Summary, want[0]) || !strings.HasPrefix(p.Steps[1].Summary, want[1]) {
		t.Errorf("steps %v, want %v", stepsOf(p), want)
	}
	replay(t, objs, p, noWarning)
}
