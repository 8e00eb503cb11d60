package cluster

import (
	"slices"

	"github.com/rrguard/rrguard/pkg/calico"
)

// State builds the cluster state the manifests describe. A projectcalico.org/v3 Node file
// adds its BGP fields and labels to the core/v1 Node of the same name, as calicoctl would.
func (m *Manifests) State() *calico.State { return calico.NewState(m.resolved()) }

// resolved returns the objects of the manifests with each projectcalico.org/v3 Node laid over
// the core/v1 Node of the same name, which it replaces.
func (m *Manifests) resolved() []*calico.Object {
	if !slices.ContainsFunc(m.Objects, func(o *calico.Object) bool { return o.Node != nil && !o.Node.FromCore }) {
		return m.Objects // no v3 Node to lay over a core one
	}
	core, v3 := map[string]*calico.Object{}, map[string]bool{}
	for _, o := range m.Objects {
		switch {
		case o.Node != nil && o.Node.FromCore:
			core[o.Name] = o
		case o.Node != nil:
			v3[o.Name] = true
		}
	}
	objs := make([]*calico.Object, 0, len(m.Objects))
	for _, o := range m.Objects {
		if o.Node != nil && !o.Node.FromCore {
			if c, ok := core[o.Name]; ok {
				objs = append(objs, mergeV3(c, o))
				continue
			}
		}
		if o.Node != nil && o.Node.FromCore && v3[o.Name] {
			continue // replaced by the merge above
		}
		objs = append(objs, o)
	}
	return objs
}

// mergeV3 lays a v3 Node's BGP fields and Calico labels over the core Node of the same name.
func mergeV3(core, v3 *calico.Object) *calico.Object {
	n := *core.Node
	n.IPv4Address, n.IPv6Address, n.ASNumber, n.ClusterID = v3.Node.IPv4Address, v3.Node.IPv6Address, v3.Node.ASNumber, v3.Node.ClusterID
	n.CalicoLabels = v3.Node.CalicoLabels
	return &calico.Object{Kind: calico.KindNode, Group: calico.GroupCore, Name: core.Name, CoreNode: core.CoreNode, Node: &n}
}
