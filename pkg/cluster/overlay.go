package cluster

import (
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// Overlay is a set of manifests laid over a cluster, as applying them would leave it: what a
// pull request to a GitOps repository does to the cluster it deploys to.
type Overlay struct {
	// Before is the cluster's state, After the state with the manifests applied.
	Before, After *calico.State
	// Changes are the objects the manifests create or change, in the order of the input, each
	// with the cluster's version as Old (nil: created).
	Changes []model.Change
	// Unchanged counts the objects of the manifests the cluster already holds as written
	// (the same to rrguard: calico.SameForBGP).
	Unchanged int
}

// Over lays the manifests over base, the objects of a cluster (LoadLiveObjects, or other
// manifests' objects): an object of the manifests replaces the object of base of the same
// kind and name, as `kubectl apply` of the whole object would. A projectcalico.org/v3 Node adds
// its BGP fields and labels to the core/v1 Node of the same name (of the manifests, else of
// base), as calicoctl does, and a core/v1 Node without a Ready condition keeps base's: apply
// does not write status. Over costs one pass over base and the manifests.
func (m *Manifests) Over(base []*calico.Object) *Overlay {
	type key struct{ kind, name string }
	after := make([]*calico.Object, len(base), len(base)+len(m.Objects))
	copy(after, base)
	at := make(map[key]int, len(base))
	for i, o := range base {
		at[key{o.Kind, o.Name}] = i // a later object of the same kind and name wins, as in calico.NewState
	}
	// The manifests' last word on each object, in the order objects first appear.
	last := map[key]*calico.Object{}
	var order []key
	for _, o := range m.resolved() {
		k := key{o.Kind, o.Name}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = o
	}
	ov := &Overlay{Before: calico.NewState(base)}
	for _, k := range order {
		o := last[k]
		i, exists := at[k]
		var old *calico.Object
		if exists {
			old = base[i]
			o = layOver(old, o)
			if calico.SameForBGP(old, o) {
				ov.Unchanged++
				continue
			}
			after[i] = o
			ov.Changes = append(ov.Changes, model.Change{Operation: model.Update, Object: o, Old: old})
			continue
		}
		after = append(after, o)
		ov.Changes = append(ov.Changes, model.Change{Operation: model.Create, Object: o})
	}
	ov.After = calico.NewState(after)
	return ov
}

// layOver returns the object o of the manifests as it is once applied over old, the cluster's
// object of the same kind and name.
func layOver(old, o *calico.Object) *calico.Object {
	if o.Node == nil || old.Node == nil || !old.Node.FromCore {
		return o
	}
	if !o.Node.FromCore {
		return mergeV3(old, o)
	}
	if o.Node.Ready == nil && old.Node.Ready != nil {
		n := *o.Node
		n.Ready = old.Node.Ready
		return &calico.Object{Kind: o.Kind, Group: o.Group, Name: o.Name, CoreNode: o.CoreNode, Node: &n}
	}
	return o
}
