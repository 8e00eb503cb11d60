//go:build e2e

package admission

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/test/offline"
)

// TestScenariosLive plays every acceptance scenario (scenario.Dirs) through real kubectl and calicoctl
// against the API server with rrguard registered, asserts each step as kubectl shows it, and
// checks that `rrguard review` (the offline path) gives the same verdict and rule IDs.
func TestScenariosLive(t *testing.T) {
	scenarios, err := scenario.LoadDirs(scenario.Dirs(h.RootDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) == 0 {
		t.Fatal("no scenarios")
	}
	reviewer := &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r := &live.Runner{H: h}
			obs, err := r.Run(ctx, sc)
			if err != nil {
				t.Fatal(err)
			}
			cluster := offline.NewCluster(sc.Initial)
			for _, o := range obs {
				for _, d := range live.Check(o) {
					t.Errorf("step %d %q (%s): %s", o.Index, o.Step.Name, o.Command, d)
				}
				resp, err := cluster.Do(reviewer, o.Step)
				if err != nil {
					t.Fatalf("offline step %d: %v", o.Index, err)
				}
				denied, warned := offline.RuleIDs(resp)
				if resp.Allowed != o.Allowed {
					t.Errorf("step %d %q: live allowed=%v, offline allowed=%v", o.Index, o.Step.Name, o.Allowed, resp.Allowed)
				}
				if !sameSet(denied, o.Rules) {
					t.Errorf("step %d %q: live denial rules %v, offline %v", o.Index, o.Step.Name, o.Rules, denied)
				}
				if !sameSet(warned, o.WarningRules) {
					t.Errorf("step %d %q: live warning rules %v, offline %v", o.Index, o.Step.Name, o.WarningRules, warned)
				}
				t.Logf("step %d %q: %s -> allowed=%v rules=%v warnings=%v", o.Index, o.Step.Name, o.Command, o.Allowed, o.Rules, o.WarningRules)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
