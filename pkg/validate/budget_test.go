package validate_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// TestSinglePointsPastTheBudget: when asking what each reflector's failure would cut costs
// more than an admission decision may spend (bgp.AdmissionBudget), the decision says that
// single points of failure were not all checked, as a warning, and refuses nothing for it;
// with the budget it does check them (the same change is allowed without that warning).
func TestSinglePointsPastTheBudget(t *testing.T) {
	var objs []*calico.Object
	objs = append(objs, validatetest.Peer("rr-mesh", "has(route-reflector)", "has(route-reflector)"),
		validatetest.Peer("clients", "!has(route-reflector)", "has(route-reflector)"), validatetest.Config(false))
	for r := range 12 {
		objs = append(objs, validatetest.Node(fmt.Sprintf("rr-%02d", r), fmt.Sprintf("10.200.0.%d", r+1), "zone-0", fmt.Sprintf("1.0.0.%d", r+1)))
	}
	for i := range 40 {
		objs = append(objs, validatetest.Node(fmt.Sprintf("node-%02d", i), fmt.Sprintf("10.1.0.%d", i+1), "zone-0", ""))
	}
	before := model.NewSnapshot(calico.NewState(objs))
	old := before.State.Node("rr-05")
	leaving := *old
	leaving.ClusterID = ""
	leaving.K8sLabels = maps.Clone(old.K8sLabels)
	delete(leaving.K8sLabels, "route-reflector")
	ch := model.Change{Operation: model.Update, Old: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: old},
		Object: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: &leaving}}
	e := validate.New(validate.Config{})
	// notChecked: whether some finding says a family or the single points were not checked
	// (a warning), whether that was the single points, and whether anything was refused.
	notChecked := func(fs []validate.Finding) (warned, singlePoints, denied bool) {
		for _, f := range fs {
			if strings.Contains(f.Message, "not checked") || strings.Contains(f.Message, "not all checked") {
				warned = warned || f.Action == validate.Warn
				singlePoints = singlePoints || strings.Contains(f.Message, "single points of failure were not all checked")
			}
			denied = denied || f.Action == validate.Deny
		}
		return warned, singlePoints, denied
	}
	if warned, _, denied := notChecked(e.Evaluate(t.Context(), ch, before)); warned || denied {
		t.Fatalf("within the budget: a not-checked warning %v, denied %v", warned, denied)
	}
	saved := bgp.AdmissionBudget
	defer func() { bgp.AdmissionBudget = saved }()
	// 64 steps: the propagation itself is not decided; 400: it is, but not every reflector's
	// what-if.
	sawSinglePoints := false
	for _, steps := range []int{64, 400} {
		bgp.AdmissionBudget.MaxSteps = steps
		start := time.Now()
		fs := e.Evaluate(t.Context(), ch, before)
		warned, singlePoints, denied := notChecked(fs)
		if !warned || denied {
			t.Errorf("%d steps: a not-checked warning %v, denied %v:\n%+v", steps, warned, denied, fs)
		}
		sawSinglePoints = sawSinglePoints || singlePoints
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%d steps: the decision took %v", steps, d)
		}
	}
	if !sawSinglePoints {
		t.Error("no budget left the single points unchecked: the test checks only the propagation's budget")
	}
}

// TestRouteGapsPastTheListing: with a BGPPeer per node every node is a class of its own, and
// a design rrguard cannot follow (eBGP to routers outside the cluster, whose fabric it does
// not see) has a gap between almost every pair: 120 nodes, 14,280 pairs. The audit judges and
// lists the first 10,000, says so in a warning with the counts, and spells out at most ten
// losses per finding; a change that adds no gap is allowed, with that warning.
func TestRouteGapsPastTheListing(t *testing.T) {
	const nodes = 120
	objs := []*calico.Object{validatetest.Config(false)}
	for i := range nodes {
		n := validatetest.Node(fmt.Sprintf("node-%03d", i), fmt.Sprintf("10.1.0.%d", i+1), "zone-0", "")
		p := validatetest.Peer("tor-"+n.Name, "", "")
		p.Peer.Spec.NodeSelector, p.Peer.Spec.PeerSelector, p.Peer.Spec.Node = "", "", n.Name
		p.Peer.Spec.PeerIP = fmt.Sprintf("192.168.%d.1", i/40)
		p.Peer.Spec.ASNumber = numorstring.ASNumber(64512 + i/40)
		objs = append(objs, n, p)
	}
	s := model.NewSnapshot(calico.NewState(objs))
	if got, want := s.Analysis.GapCount(), nodes*(nodes-1); got != want {
		t.Fatalf("gaps: %d, want %d (every node misses every other's routes)", got, want)
	}
	e := validate.New(validate.Config{})
	unlisted := func(fs []validate.Finding) []validate.Finding {
		var out []validate.Finding
		for _, f := range fs {
			if strings.Contains(f.Message, "judged and reported the first") {
				out = append(out, f)
			}
		}
		return out
	}
	fs := e.Audit(t.Context(), s)
	u := unlisted(fs)
	if len(u) != 1 || u[0].Action != validate.Warn || !strings.Contains(u[0].Message, "14280 pairs") || !strings.Contains(u[0].Message, "the other 4280") {
		t.Fatalf("audit: want one warning that 4,280 of 14,280 pairs were not checked, got %+v", u)
	}
	denials := 0
	for _, f := range fs {
		if f.Rule != validate.RuleRoutePropagation || f.Action != validate.Deny {
			continue
		}
		denials++
		if n := strings.Count(f.Message, "would not learn"); n > 10 {
			t.Errorf("a finding spells out %d losses (at most 10, then a count): %.300s", n, f.Message)
		}
	}
	if denials == 0 {
		t.Fatalf("audit: no route-propagation finding: %+v", fs)
	}
	old := s.State.Node("node-007")
	changed := *old
	changed.K8sLabels = maps.Clone(old.K8sLabels)
	changed.K8sLabels["team"] = "payments"
	fs = e.Evaluate(t.Context(), model.Change{Operation: model.Update, Old: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: old},
		Object: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: &changed}}, s)
	for _, f := range fs {
		if f.Action == validate.Deny {
			t.Errorf("a label change refused: %+v", f)
		}
	}
	if len(unlisted(fs)) != 1 {
		t.Errorf("a label change: want the warning that some pairs were not checked, got %+v", fs)
	}
}
