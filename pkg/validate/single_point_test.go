package validate

import (
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// twoZones: two zones, two reflectors each (every reflector with its own cluster ID), clients
// peered with both reflectors of their zone, reflectors peered within their zone, and the
// reflectors named in bridged peered across the zones.
func twoZones(bridged ...string) []*calico.Object {
	rr := func(name, ip, cid, zone string) *calico.Object {
		opts := []nodeOpt{clusterID(cid), label("rr", name), label("zone", zone)}
		if contains(bridged, name) {
			opts = append(opts, label("bridge", "yes"))
		}
		return node(name, ip, opts...)
	}
	return []*calico.Object{
		rr("a1", "10.1.0.1", "1.0.0.1", "a"), rr("a2", "10.1.0.2", "1.0.0.2", "a"),
		rr("b1", "10.2.0.1", "1.0.0.3", "b"), rr("b2", "10.2.0.2", "1.0.0.4", "b"),
		node("ca", "10.1.0.10", label("zone", "a")), node("cb", "10.2.0.10", label("zone", "b")),
		selPeer("za", "zone == 'a' && !has(rr)", "zone == 'a' && has(rr)"),
		selPeer("zb", "zone == 'b' && !has(rr)", "zone == 'b' && has(rr)"),
		selPeer("rra", "zone == 'a' && has(rr)", "zone == 'a' && has(rr)"),
		selPeer("rrb", "zone == 'b' && has(rr)", "zone == 'b' && has(rr)"),
		selPeer("bridge", "bridge == 'yes'", "bridge == 'yes'"), mesh(false),
	}
}

// One bridge between the zones (a1 to b1): every client has two reflectors, yet losing a1 or
// b1 cuts the zones apart.
func TestSingleReflectorBridge(t *testing.T) {
	got := New(Config{}).Audit(t.Context(), model.NewSnapshot(calico.NewState(twoZones("a1", "b1"))))
	single := map[string]bool{}
	for _, f := range got {
		switch {
		case f.Rule == RuleReflectorRedundancy && strings.Contains(f.Message, "single point of failure"):
			single[f.Object.Name] = true
		case f.Action == Deny:
			t.Errorf("unexpected finding: %s %s: %s", f.Rule, f.Object, f.Message)
		}
	}
	if !single["a1"] || !single["b1"] || len(single) != 2 {
		t.Errorf("single points %v, want a1 and b1\n%s", single, dump(got))
	}
	// A second bridge (a2 to b2) removes both.
	if fs := New(Config{}).Audit(t.Context(), model.NewSnapshot(calico.NewState(twoZones("a1", "a2", "b1", "b2")))); len(fs) != 0 {
		t.Errorf("with two bridges: %s", dump(fs))
	}
	// The seed's two reflectors back each other up: no single point.
	if fs := New(Config{}).Audit(t.Context(), model.NewSnapshot(calico.NewState(seed()))); len(fs) != 0 {
		t.Errorf("seed: %s", dump(fs))
	}
}

func TestSinglePointIntroducedAtAdmission(t *testing.T) {
	state := twoZones("a1", "a2", "b1", "b2")
	before := model.NewSnapshot(calico.NewState(state))
	a2 := state[1]
	// a2 leaves the bridge: a1 becomes zone a's only way out.
	left := node("a2", "10.1.0.2", clusterID("1.0.0.2"), label("rr", "a2"), label("zone", "a"))
	got := New(Config{}).Evaluate(t.Context(), model.Change{Operation: model.Update, Old: a2, Object: left}, before)
	if !strings.Contains(dump(got), "reflector a1 is a single point of failure") {
		t.Errorf("single point not reported at admission:\n%s", dump(got))
	}
	// An ordinary client label change does not pay for the what-if and reports nothing.
	ca := state[4]
	labelled := node("ca", "10.1.0.10", label("zone", "a"), label("team", "x"))
	if got := New(Config{}).Evaluate(t.Context(), model.Change{Operation: model.Update, Old: ca, Object: labelled}, before); len(got) != 0 {
		t.Errorf("client label change: %s", dump(got))
	}
}
