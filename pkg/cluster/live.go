package cluster

import (
	"context"
	"fmt"
	"sort"

	"github.com/rrguard/rrguard/pkg/calico"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CalicoKinds are the Calico resources rrguard reads, in whichever of the two groups are
// installed: what calico-node reads that decides routes (BlockAffinities: the IPAM blocks each
// node holds).
var CalicoKinds = []schema.GroupVersionKind{
	{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBGPPeer},
	{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBGPConfiguration},
	{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBGPFilter},
	{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindIPPool},
	{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBlockAffinity},
	{Group: calico.GroupV3, Version: "v3", Kind: calico.KindBGPPeer},
	{Group: calico.GroupV3, Version: "v3", Kind: calico.KindBGPConfiguration},
	{Group: calico.GroupV3, Version: "v3", Kind: calico.KindBGPFilter},
	{Group: calico.GroupV3, Version: "v3", Kind: calico.KindIPPool},
	{Group: calico.GroupV3, Version: "v3", Kind: calico.KindBlockAffinity},
}

// LoadLive reads the cluster state from an API server: every Node, and the BGPPeers and
// BGPConfigurations of the Calico groups that are installed (notes say which are not).
func LoadLive(ctx context.Context, cfg *rest.Config) (*calico.State, []string, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, nil, err
	}
	objs, notes, err := LoadLiveObjects(ctx, c)
	if err != nil {
		return nil, notes, err
	}
	return calico.NewState(objs), notes, nil
}

// LoadLiveObjects reads what LoadLive reads as objects: the core/v1 Nodes keep their whole
// object (spec.unschedulable, every label and annotation), for callers that write them back.
func LoadLiveObjects(ctx context.Context, c client.Client) ([]*calico.Object, []string, error) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, nil, fmt.Errorf("list Nodes: %w", err)
	}
	var objs []*calico.Object
	for i := range nodes.Items {
		n := &nodes.Items[i]
		objs = append(objs, &calico.Object{Kind: calico.KindNode, Name: n.Name, CoreNode: n, Node: calico.NodeFromCore(n)})
	}
	var notes []string
	for _, gvk := range CalicoKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) {
				notes = append(notes, fmt.Sprintf("%s is not installed", gvk.GroupKind()))
				continue
			}
			return nil, notes, fmt.Errorf("list %s: %w", gvk.GroupKind(), err)
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].GetName() < list.Items[j].GetName() })
		for i := range list.Items {
			o, err := calico.Decode(&list.Items[i])
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s %s left out: %v", gvk.Kind, list.Items[i].GetName(), err))
				continue
			}
			objs = append(objs, o)
		}
	}
	return objs, notes, nil
}
