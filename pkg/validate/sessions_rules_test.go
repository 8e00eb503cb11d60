package validate

import (
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/model"
)

// TestUndecidedPropagation: when route propagation exceeds its budget, the audit says so in
// one warning per family and admission never refuses on it.
func TestUndecidedPropagation(t *testing.T) {
	saved := bgp.DefaultBudget
	bgp.DefaultBudget = bgp.Budget{MaxStates: 3, MaxSteps: 1 << 20}
	t.Cleanup(func() { bgp.DefaultBudget = saved })

	s := seedState(t, "false") // two reflectors sharing a cluster ID: the bounded search runs
	var undecided []Finding
	for _, f := range New(Config{}).Audit(t.Context(), s) {
		if f.Rule == RuleRoutePropagation {
			undecided = append(undecided, f)
		}
	}
	if len(undecided) != 1 || undecided[0].Action != Warn || !strings.Contains(undecided[0].Message, "IPv4 route propagation was not checked: route propagation needs more than 3 route states") {
		t.Fatalf("route-propagation findings: %+v", undecided)
	}
	// A change that would cut nodes off is not refused on a guess: it is warned about.
	ch := model.Change{Operation: model.Create, Object: obj(t, peer("extra", "all()", "has(route-reflector)"))}
	for _, f := range New(Config{}).Evaluate(t.Context(), ch, s) {
		if f.Action == Deny && f.Rule == RuleRoutePropagation {
			t.Errorf("refused on an undecided propagation: %+v", f)
		}
	}
}

// TestPeerIPWithoutAS: confd renders "as 0" for a peerIP peer without asNumber, and BIRD then
// loads no configuration at all on the nodes the peer applies to.
func TestPeerIPWithoutAS(t *testing.T) {
	s := seedState(t, "false")
	ch := model.Change{Operation: model.Create, Object: obj(t, "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.9.1}\n")}
	var rules []string
	for _, f := range New(Config{}).Evaluate(t.Context(), ch, s) {
		if f.Action == Deny {
			rules = append(rules, f.Rule)
			if f.Rule == RuleASNumber && (f.Field != "spec.asNumber" || !strings.Contains(f.Message, "BGPPeer tor: spec.peerIP 10.0.9.1 without spec.asNumber")) {
				t.Errorf("finding: %+v", f)
			}
		}
	}
	// Every node loses its sessions: the routes stop too.
	if !slices.Contains(rules, RuleASNumber) || !slices.Contains(rules, RuleRoutePropagation) {
		t.Errorf("deny rules %v, want %s and %s", rules, RuleASNumber, RuleRoutePropagation)
	}
}

// TestSessionOneSided: a peerIP peer toward a node with another asNumber than the node's is
// configured on one end only; admission warns about the session it introduces.
func TestSessionOneSided(t *testing.T) {
	s := seedState(t, "false")
	ch := model.Change{Operation: model.Create, Object: obj(t, "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: w1-to-rr1}\nspec: {node: w1, peerIP: 10.0.0.4, asNumber: 64512}\n")}
	var got []Finding
	for _, f := range New(Config{}).Evaluate(t.Context(), ch, s) {
		if f.Rule == RuleSessionOneSided {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Action != Warn || !strings.Contains(got[0].Message, "w1 configures a BGP session (IPv4) to w2, which does not configure it back") {
		t.Fatalf("session-one-sided findings: %+v", got)
	}
	// Deleting an unrelated peer of the same state introduces nothing of the kind.
	after := s.After(ch)
	del := model.Change{Operation: model.Delete, Old: obj(t, peer("rr-mesh", "has(route-reflector)", "has(route-reflector)"))}
	for _, f := range New(Config{}).Evaluate(t.Context(), del, after) {
		if f.Rule == RuleSessionOneSided {
			t.Errorf("already one-sided before the change: %+v", f)
		}
	}
}
