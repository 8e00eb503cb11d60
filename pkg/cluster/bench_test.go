package cluster

import (
	"fmt"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// BenchmarkSnapshotAfterLabelChange is what the first admission request after a Node label
// change pays when it judges against the store: 5,000 nodes, with 0 or 1,000 node-scoped
// BGPPeers (one per rack) besides the reflector peers.
func BenchmarkSnapshotAfterLabelChange(b *testing.B) {
	for _, racks := range []int{0, 1000} {
		b.Run(fmt.Sprintf("5000-nodes-%d-rack-peers", racks), func(b *testing.B) {
			objs := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 2})
			for r := 0; r < racks; r++ {
				objs = append(objs, validatetest.Peer(fmt.Sprintf("rack-%04d", r), fmt.Sprintf("rack == 'r%d'", r), "has(route-reflector)"))
			}
			for i, o := range objs {
				if o.CoreNode != nil {
					o.CoreNode.Labels["rack"] = fmt.Sprintf("r%d", i%max(racks, 1))
				}
			}
			store := storeWith(b, objs)
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

// BenchmarkSnapshotAfterPeerChange is what the first admission request after a rack
// BGPPeer's spec change pays when it judges against the store (validatetest.Racks: 5,000
// Nodes, 1,000 rack BGPPeers): the peer's selector takes another rack in, then back.
func BenchmarkSnapshotAfterPeerChange(b *testing.B) {
	objs := validatetest.Racks()
	store := storeWith(b, objs)
	store.Snapshot()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		sel := "rack == 'r5'"
		if i%2 == 1 {
			sel = fmt.Sprintf("rack in {'r5', 'r%d'}", 6+i%900)
		}
		upsert(b, store, validatetest.Peer("rack-0005", sel, "has(route-reflector)"), "crd.projectcalico.org/v1")
		store.Snapshot()
	}
}

// BenchmarkLoadManifests is what `rrguard validate -f` does before judging: 5,000 Node
// documents read, decoded (on every core) and turned into a state.
func BenchmarkLoadManifests(b *testing.B) {
	dir := validatetest.NodeManifests(b, 5000)
	load := func() {
		m, err := LoadFiles([]string{dir}, LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if s := m.State(); len(s.NodeNames()) != 5000 {
			b.Fatalf("%d nodes", len(s.NodeNames()))
		}
	}
	load() // untimed: the heap grown and the files read once, as for its floor
	b.ReportAllocs()
	for b.Loop() {
		load()
	}
}

// BenchmarkLoadManifestsFloor is BenchmarkLoadManifests' floor: the same files read and
// each document parsed once, on every core, by go.yaml.in/yaml/v2 into a generic value — the
// parse sigs.k8s.io/yaml (and so kubectl) starts every document with — and nothing more.
func BenchmarkLoadManifestsFloor(b *testing.B) {
	dir := validatetest.NodeManifests(b, 5000)
	parse := func() {
		if n, err := validatetest.ParseManifests(dir); err != nil || n < 5000 {
			b.Fatalf("%d documents: %v", n, err)
		}
	}
	parse() // untimed, as BenchmarkLoadManifests' first load
	b.ReportAllocs()
	for b.Loop() {
		parse()
	}
}
