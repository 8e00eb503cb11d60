package validate

import (
	"slices"

	"github.com/rrguard/rrguard/pkg/model"
)

// Admission is monotone: a change that leaves every node at least as well off as before is
// never refused, however broken the cluster already is. "Introduced" (rule.go) compares
// problems by key and class, which a repair can trip over: a node cut off from everything
// that gets one reflector back goes from a route-propagation problem to a reflector-redundancy
// one (1 < minReflectors), a new key. Such a change is a partial repair: allowed, with what
// remains wrong as warnings.

// monotone reports whether the change from before to after leaves every node at least as well
// off: the mesh setting is the same, every node after took part in BGP before (a new node has
// no "before" to be as well off as), no node pair whose routes flowed stops learning them, no
// client loses a reflector it had a working session with, and the judgment found no new single
// point of failure.
func (j *judgment) monotone(before, after *model.Snapshot) bool {
	if before.State.Mesh() != after.State.Mesh() || j.newSinglePoints {
		return false
	}
	a, b := after.Analysis, before.Analysis
	// The before-class of each member of each after-class, grouped.
	groups := make([][]baseGroup, len(a.Classes))
	for c := range a.Classes {
		groups[c] = groupByBaseClass(before, members(after, c))
		for _, g := range groups[c] {
			if g.class < 0 {
				return false // new to BGP here
			}
		}
	}
	for g := range a.Gaps() {
		for _, x := range groups[g.From] {
			for _, y := range groups[g.To] {
				if !b.HasGap(g.Family, x.class, y.class) && (x.class != y.class || len(b.Classes[x.class].Members) > 1) {
					return false // a pair learned these routes before
				}
			}
		}
	}
	for c := range a.Classes {
		if a.Classes[c].ClusterID != "" {
			continue
		}
		now := reflectorsOf(after, c)
		for _, g := range groups[c] {
			for _, r := range reflectorsOf(before, g.class) {
				if !slices.Contains(now, r) {
					return false // a client lost a reflector
				}
			}
		}
	}
	return true
}
