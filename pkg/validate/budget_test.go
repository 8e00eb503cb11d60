package validate_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

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
