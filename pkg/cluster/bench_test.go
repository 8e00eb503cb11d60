package cluster

import (
	"fmt"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkSnapshotAfterLabelChange is what the first admission request after a Node label
// change pays when it judges against the store: 5,000 nodes, with 0 or 1,000 node-scoped
// BGPPeers (one per rack) besides the reflector peers.
func BenchmarkSnapshotAfterLabelChange(b *testing.B) {
	for _, racks := range []int{0, 1000} {
		b.Run(fmt.Sprintf("5000-nodes-%d-rack-peers", racks), func(b *testing.B) {
			store := NewStore()
			objs := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 2})
			for r := 0; r < racks; r++ {
				objs = append(objs, validatetest.Peer(fmt.Sprintf("rack-%04d", r), fmt.Sprintf("rack == 'r%d'", r), "has(route-reflector)"))
			}
			for i, o := range objs {
				switch {
				case o.CoreNode != nil:
					o.CoreNode.Labels["rack"] = fmt.Sprintf("r%d", i%max(racks, 1))
					store.UpsertNode(o.CoreNode)
				case o.Peer != nil, o.Config != nil:
					var in interface{} = o.Peer
					kind := "BGPPeer"
					if o.Config != nil {
						in, kind = o.Config, "BGPConfiguration"
					}
					raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(in)
					if err != nil {
						b.Fatal(err)
					}
					u := &unstructured.Unstructured{Object: raw}
					u.SetAPIVersion("crd.projectcalico.org/v1")
					u.SetKind(kind)
					if _, err := store.Upsert(u); err != nil {
						b.Fatal(err)
					}
				}
			}
			store.Snapshot()
			node := objs[1234].CoreNode.DeepCopy()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				node.Labels["team"] = fmt.Sprint(i)
				store.UpsertNode(node.DeepCopy())
				store.Snapshot()
			}
		})
	}
}
