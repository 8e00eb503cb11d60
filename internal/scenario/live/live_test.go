package live

import (
	"reflect"
	"testing"

	"github.com/rrguard/rrguard/internal/scenario"
)

func TestSplitWarnings(t *testing.T) {
	stderr := "Warning: resource nodes/qtwtv is missing the kubectl.kubernetes.io/last-applied-configuration annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively.\n" +
		"Warning: [selector-matches-nothing] has(router-reflector) selects no node\n" +
		`I1126 01:36:15.447818    8666 warnings.go:110] "Warning: reflector-without-peers: \"zyisy\" has no peers"` + "\n" +
		"W1126 01:36:15.447818    8666 warnings.go:70] as-number: old client-go format\n" +
		"Error from server (Forbidden): admission webhook \"rrguard\" denied the request: [route-propagation] x\n"
	warnings, rest := splitWarnings(stderr)
	want := []string{
		"[selector-matches-nothing] has(router-reflector) selects no node",
		`reflector-without-peers: "zyisy" has no peers`,
		"as-number: old client-go format",
	}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
	if rest != `Error from server (Forbidden): admission webhook "rrguard" denied the request: [route-propagation] x` {
		t.Errorf("rest %q", rest)
	}
}

func TestRuleIDsIn(t *testing.T) {
	ids := []string{"as-number", "route-propagation", "reflector-redundancy", "selector-syntax"}
	for text, want := range map[string][]string{
		"": {},
		"spec.asNumber: Invalid value: [as-number] x":                             {"as-number"},
		"route-propagation-extra and xroute-propagation":                          {},
		"(reflector-redundancy), then route-propagation; route-propagation again": {"reflector-redundancy", "route-propagation"},
		"selector-syntax-x selector-syntax":                                       {"selector-syntax"},
	} {
		if got := ruleIDsIn(text, ids); !reflect.DeepEqual(got, want) {
			t.Errorf("ruleIDsIn(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestMapPatch(t *testing.T) {
	from := map[string]string{"keep": "1", "change": "a", "drop": "x"}
	to := map[string]string{"keep": "1", "change": "b", "add": "y"}
	want := map[string]any{"change": "b", "drop": nil, "add": "y"}
	if got := mapPatch(from, to); !reflect.DeepEqual(got, want) {
		t.Errorf("mapPatch = %v, want %v", got, want)
	}
	if got := mapPatch(from, from); got != nil {
		t.Errorf("mapPatch of equal maps = %v, want nil", got)
	}
}

func TestCheck(t *testing.T) {
	yes := "true"
	step := scenario.Step{
		Expect: "deny", Deny: []string{"route-propagation"}, Warnings: []string{"as-number"},
		After: &scenario.After{NodeLabels: map[string]map[string]*string{
			"a": {"route-reflector": &yes, "gone": nil},
			"b": {"route-reflector": &yes},
		}},
	}
	matching := Observation{
		Step: step, Rules: []string{"reflector-redundancy", "route-propagation"}, WarningRules: []string{"as-number"},
		NodeLabels: map[string]map[string]string{"a": {"route-reflector": "true"}, "b": {"route-reflector": "true", "x": "y"}},
	}
	if d := Check(matching); len(d) != 0 {
		t.Errorf("Check of a matching observation: %q", d)
	}
	wrong := Observation{
		Step: step, Allowed: true,
		NodeLabels: map[string]map[string]string{"a": {"route-reflector": "false", "gone": ""}, "b": nil},
	}
	if d := Check(wrong); len(d) != 6 {
		t.Errorf("Check of a wrong observation: want 6 differences (allowed, deny, warning, 2 labels of a, b missing), got %d: %q", len(d), d)
	}
}
