package validate

import (
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
)

// Two zones, two reflectors each (every reflector with its own cluster ID), clients peered with
// both reflectors of their zone, reflectors peered within their zone, and one bridge between
// the zones: a1 to b1. Every client has two reflectors, yet losing a1 or b1 cuts the zones apart.
func TestSingleReflectorBridge(t *testing.T) {
	docs := coreNode("a1", "10.1.0.1", "cid=1.0.0.1", "rr=a1", "zone=a", "bridge=yes") +
		coreNode("a2", "10.1.0.2", "cid=1.0.0.2", "rr=a2", "zone=a") +
		coreNode("b1", "10.2.0.1", "cid=1.0.0.3", "rr=b1", "zone=b", "bridge=yes") +
		coreNode("b2", "10.2.0.2", "cid=1.0.0.4", "rr=b2", "zone=b") +
		coreNode("ca", "10.1.0.10", "zone=a") + coreNode("cb", "10.2.0.10", "zone=b") +
		peer("za", "zone == 'a' && !has(rr)", "zone == 'a' && has(rr)") +
		peer("zb", "zone == 'b' && !has(rr)", "zone == 'b' && has(rr)") +
		peer("rra", "zone == 'a' && has(rr)", "zone == 'a' && has(rr)") +
		peer("rrb", "zone == 'b' && has(rr)", "zone == 'b' && has(rr)") +
		peer("bridge", "bridge == 'yes'", "bridge == 'yes'") + meshConfig(false, 64512)
	got := New(Config{}).Audit(t.Context(), NewSnapshot(calico.NewState(objs(t, docs))))
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
	fixed := strings.Replace(docs, coreNode("a2", "10.1.0.2", "cid=1.0.0.2", "rr=a2", "zone=a"), coreNode("a2", "10.1.0.2", "cid=1.0.0.2", "rr=a2", "zone=a", "bridge=yes"), 1)
	fixed = strings.Replace(fixed, coreNode("b2", "10.2.0.2", "cid=1.0.0.4", "rr=b2", "zone=b"), coreNode("b2", "10.2.0.2", "cid=1.0.0.4", "rr=b2", "zone=b", "bridge=yes"), 1)
	if fs := New(Config{}).Audit(t.Context(), NewSnapshot(calico.NewState(objs(t, fixed)))); len(fs) != 0 {
		t.Errorf("with two bridges: %s", dump(fs))
	}
	// The seed's two reflectors back each other up: no single point.
	if fs := New(Config{}).Audit(t.Context(), NewSnapshot(calico.NewState(objs(t, seedDocs)))); len(fs) != 0 {
		t.Errorf("seed: %s", dump(fs))
	}
}

func TestSinglePointIntroducedAtAdmission(t *testing.T) {
	node := func(name, ip, cid, rr, zone string, bridge bool) string {
		extra := []string{"cid=" + cid, "rr=" + rr, "zone=" + zone}
		if bridge {
			extra = append(extra, "bridge=yes")
		}
		return coreNode(name, ip, extra...)
	}
	docs := node("a1", "10.1.0.1", "1.0.0.1", "a1", "a", true) + node("a2", "10.1.0.2", "1.0.0.2", "a2", "a", true) +
		node("b1", "10.2.0.1", "1.0.0.3", "b1", "b", true) + node("b2", "10.2.0.2", "1.0.0.4", "b2", "b", true) +
		coreNode("ca", "10.1.0.10", "zone=a") + coreNode("cb", "10.2.0.10", "zone=b") +
		peer("za", "zone == 'a' && !has(rr)", "zone == 'a' && has(rr)") +
		peer("zb", "zone == 'b' && !has(rr)", "zone == 'b' && has(rr)") +
		peer("rra", "zone == 'a' && has(rr)", "zone == 'a' && has(rr)") +
		peer("rrb", "zone == 'b' && has(rr)", "zone == 'b' && has(rr)") +
		peer("bridge", "bridge == 'yes'", "bridge == 'yes'") + meshConfig(false, 64512)
	before := NewSnapshot(calico.NewState(objs(t, docs)))
	// a2 leaves the bridge: a1 becomes zone a's only way out.
	ch := Change{Operation: Update, Old: obj(t, node("a2", "10.1.0.2", "1.0.0.2", "a2", "a", true)), Object: obj(t, node("a2", "10.1.0.2", "1.0.0.2", "a2", "a", false))}
	got := New(Config{}).Evaluate(t.Context(), ch, before)
	if !strings.Contains(dump(got), "reflector a1 is a single point of failure") {
		t.Errorf("single point not reported at admission:\n%s", dump(got))
	}
	// An ordinary client label change does not pay for the what-if and reports nothing.
	ch = Change{Operation: Update, Old: obj(t, coreNode("ca", "10.1.0.10", "zone=a")), Object: obj(t, coreNode("ca", "10.1.0.10", "zone=a", "team=x"))}
	if got := New(Config{}).Evaluate(t.Context(), ch, before); len(got) != 0 {
		t.Errorf("client label change: %s", dump(got))
	}
}
