package validate

import (
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/bgp"
)

// TestUndecidedPropagation: when route propagation exceeds its budget, the audit says so in
// one warning per family and admission never refuses on it.
func TestUndecidedPropagation(t *testing.T) {
	saved := bgp.DefaultBudget
	bgp.DefaultBudget = bgp.Budget{MaxStates: 3, MaxSteps: 1 << 20}
	t.Cleanup(func() { bgp.DefaultBudget = saved })

	s := seedState(t, "false") // two reflectors sharing a cluster ID: the bounded search runs
	var undecided []Finding
	for _, f := range New(Config{}).Audit(s) {
		if f.Rule == RuleRoutePropagation {
			undecided = append(undecided, f)
		}
	}
	if len(undecided) != 1 || undecided[0].Action != Warn || !strings.Contains(undecided[0].Message, "IPv4 route propagation was not checked: route propagation needs more than 3 route states") {
		t.Fatalf("route-propagation findings: %+v", undecided)
	}
	// A change that would cut nodes off is not refused on a guess: it is warned about.
	ch := Change{Operation: Create, Object: obj(t, peer("extra", "all()", "has(route-reflector)"))}
	for _, f := range New(Config{}).Evaluate(ch, s) {
		if f.Action == Deny && f.Rule == RuleRoutePropagation {
			t.Errorf("refused on an undecided propagation: %+v", f)
		}
	}
}
