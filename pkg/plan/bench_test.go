package plan_test

import (
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// BenchmarkPlan is a whole plan, every step judged and audited: the migration of 5,000 nodes
// in 3 zones from the mesh (target: 2 s), and the replacement of a lost reflector in the
// design that results.
func BenchmarkPlan(b *testing.B) {
	mesh := cluster(5000, "zone-0", "zone-1", "zone-2")
	designed := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 6, Zones: 3})
	lost := designed[0].CoreNode.DeepCopy()
	lost.Status.Conditions[0].Status = "False"
	designed[0] = calico.NodeObject(lost)
	for _, bc := range []struct {
		name  string
		objs  []*calico.Object
		opts  plan.Options
		steps int
	}{
		{"5000-nodes-3-zones-from-mesh", mesh, plan.Options{}, 12},
		// The CLI's defaults: one reflector per 200 nodes, at most 5 per zone: 15 reflectors.
		{"5000-nodes-3-zones-from-mesh-5-per-zone", mesh, plan.Options{ClientsPerReflector: 200}, 21},
		{"5000-nodes-3-zones-replace-notready", designed, plan.Options{}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			state := calico.NewState(bc.objs)
			nodes := plan.CoreNodes(bc.objs)
			b.ReportAllocs()
			for b.Loop() {
				p, err := plan.Make(b.Context(), engine, state, nodes, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if bc.steps > 0 && len(p.Steps) != bc.steps {
					b.Fatalf("%d steps, want %d", len(p.Steps), bc.steps)
				}
				if len(p.Steps) == 0 {
					b.Fatal("no steps")
				}
			}
		})
	}
}
