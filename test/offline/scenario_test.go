package offline

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
)

// TestScenariosOffline plays rrguard's scenarios, and those of $RRGUARD_SCENARIOS, through the
// reviewer with no API server.
func TestScenariosOffline(t *testing.T) {
	all, err := scenario.LoadDirs(scenario.Dirs(filepath.Join("..", "..")))
	if err != nil {
		t.Fatal(err)
	}
	reviewer := &webhook.Reviewer{Engine: validate.New(validate.DefaultConfig())}
	for _, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			c := NewCluster(sc.Initial)
			for i, step := range sc.Steps {
				resp, err := c.Do(reviewer, step)
				if err != nil {
					t.Fatalf("step %d %q: %v", i+1, step.Name, err)
				}
				denied, warned := RuleIDs(resp)
				msg := ""
				if resp.Result != nil {
					msg = resp.Result.Message
				}
				t.Logf("step %d %q: allowed=%v denied=%v warned=%v %s %s", i+1, step.Name, resp.Allowed, denied, warned, msg, resp.Patch)
				switch {
				case step.Expect == "allow" && !resp.Allowed:
					t.Errorf("step %d %q: denied, want allowed: %s", i+1, step.Name, msg)
				case step.Expect == "deny" && resp.Allowed:
					t.Errorf("step %d %q: allowed, want denied (%v); warnings %q", i+1, step.Name, step.Deny, resp.Warnings)
				}
				for _, id := range step.Deny {
					if !slices.Contains(denied, id) {
						t.Errorf("step %d %q: denial does not name %s: %s", i+1, step.Name, id, msg)
					}
				}
				for _, id := range step.Warnings {
					if !slices.Contains(warned, id) {
						t.Errorf("step %d %q: no %s warning; warnings %q", i+1, step.Name, id, resp.Warnings)
					}
				}
				if step.After != nil {
					for name, want := range step.After.NodeLabels {
						got, err := c.NodeLabels(name)
						if err != nil {
							t.Fatalf("step %d %q: %v", i+1, step.Name, err)
						}
						for k, v := range want {
							gv, ok := got[k]
							switch {
							case v == nil && ok:
								t.Errorf("step %d %q: node %s has label %s=%q, want none", i+1, step.Name, name, k, gv)
							case v != nil && (!ok || gv != *v):
								t.Errorf("step %d %q: node %s label %s = %q (present %v), want %q", i+1, step.Name, name, k, gv, ok, *v)
							}
						}
					}
				}
			}
		})
	}
}
