package validate

import (
	"context"
	"slices"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// EvaluateAll judges several changes taken together, as one change: a directory of manifests
// applied to a cluster (`rrguard validate --context -f`), whose objects rely on one another
// (the mesh turned off in one file, the BGPPeers it needs created in another). Admission sees
// them one at a time, each against the cluster without the others. after must be before with
// every change applied, each change to a different object.
//
// It reports what the changes introduce, as Evaluate does for one: each changed object's
// findings that its old version did not have, and the problems of the state after that the
// state before did not have; changes that turn the node-to-node mesh off are judged on the
// whole resulting topology. One change is judged exactly as Evaluate judges it. Of several, a
// finding about the topology is held against the changed object it names; else, when they
// turn the mesh off, against that BGPConfiguration; else it keeps the object it names, since
// no one change of the set is to blame.
func (e *Engine) EvaluateAll(ctx context.Context, changes []model.Change, before, after *model.Snapshot) []Finding {
	if len(changes) == 0 {
		return nil
	}
	var out []Finding
	for _, ch := range changes {
		out = append(out, e.introducedOnObject(ch)...)
	}
	j := &judgment{e: e, ch: reflecting(changes), whole: before.State.Mesh() && !after.State.Mesh()}
	topo := j.topology(after, before)
	for i := range Rules {
		if explain := Rules[i].change; explain != nil {
			for _, ch := range changes {
				if f := explain(e, ch, topo); f != nil {
					topo = append(topo, *f)
				}
			}
		}
	}
	// Changes that leave every node at least as well off are never refused (monotone.go).
	monotone := !j.whole && len(topo) > 0 && !slices.ContainsFunc(topo, func(f Finding) bool { return f.declared }) && j.monotone(before, after)
	for _, f := range topo {
		if monotone {
			f.warnAtMost = true
		}
		f.Object, f.Field = heldAgainst(changes, f, j.whole)
		out = append(out, f)
	}
	out = e.enforce(out)
	if len(changes) == 1 {
		return e.evaluatePolicies(ctx, changes[0], before, out)
	}
	// Each changed object meets the policies as admission would show it to them: with the
	// findings about it.
	all := out
	for _, ch := range changes {
		target := refOf(ch.Target())
		var about []Finding
		for _, f := range out {
			if f.Object == target {
				about = append(about, f)
			}
		}
		all = append(all, e.evaluatePolicies(ctx, ch, before, about)[len(about):]...)
	}
	return all
}

// introducedOnObject returns the findings of the object rules on the changed object that its
// old version did not have (by key).
func (e *Engine) introducedOnObject(ch model.Change) []Finding {
	if ch.Object == nil {
		return nil
	}
	old := map[string]bool{}
	if ch.Old != nil {
		for _, f := range e.objectFindings(ch.Old) {
			old[f.key] = true
		}
	}
	var out []Finding
	for _, f := range e.objectFindings(ch.Object) {
		if !old[f.key] {
			out = append(out, f)
		}
	}
	return out
}

// reflecting returns the change a judgment of several asks its questions about: one that can
// alter how routes are reflected if there is one (the single points of failure are then
// looked for), else the first.
func reflecting(changes []model.Change) *model.Change {
	if i := slices.IndexFunc(changes, touchesReflection); i >= 0 {
		return &changes[i]
	}
	return &changes[0]
}

// heldAgainst returns the object and field a topology finding is reported on. A finding of a
// single change is about that change, as admission reports it: the object refused is the one
// changed, and the field is the part of it that made the difference (changedField).
func heldAgainst(changes []model.Change, f Finding, whole bool) (ObjectRef, string) {
	if len(changes) == 1 {
		ch := changes[0]
		target := refOf(ch.Target())
		if f.Object != target || f.Field == "" {
			return target, changedField(ch)
		}
		return target, f.Field
	}
	for _, ch := range changes {
		if t := ch.Target(); t.Kind == f.Object.Kind && t.Name == f.Object.Name {
			if f.Field == "" {
				return refOf(t), changedField(ch)
			}
			return refOf(t), f.Field
		}
	}
	if whole {
		for _, ch := range changes {
			if o := ch.Object; o != nil && o.Config != nil && o.Name == calico.DefaultConfigName {
				return refOf(o), meshPath
			}
		}
	}
	return f.Object, f.Field
}
