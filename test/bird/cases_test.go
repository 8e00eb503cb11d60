//go:build e2e

package bird

import (
	"fmt"
	"strconv"
	"testing"
)

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// seedNodes are the five nodes of the seed migration story; reflectors zyisy and rxgks.
func seedNodes(reflectors bool) []tnode {
	names := []string{"zyisy", "uqwst", "volwl", "rxgks", "qtwtv"}
	var out []tnode
	for _, n := range names {
		tn := tnode{name: n, v4: true, labels: labels()}
		if reflectors && (n == "zyisy" || n == "rxgks") {
			tn.cid = "1.0.0.1"
			tn.labels["route-reflector"] = "true"
		}
		out = append(out, tn)
	}
	return out
}

var seedPeers = []tpeer{
	{name: "node-peer-to-rr", nodeSel: "!has(route-reflector)", peerSel: "has(route-reflector)"},
	{name: "rr-to-rr-peer", nodeSel: "has(route-reflector)", peerSel: "has(route-reflector)"},
}

func TestSeedStory(t *testing.T) {
	t.Parallel()
	steps := map[string]topology{
		"1-mesh":                         {nodes: seedNodes(false), mesh: true, as: 63400},
		"2-reflectors-labelled-mesh-on":  {nodes: seedNodes(true), mesh: true, as: 63400},
		"3-peers-created-mesh-on":        {nodes: seedNodes(true), peers: seedPeers, mesh: true, as: 63400},
		"4-mesh-off":                     {nodes: seedNodes(true), peers: seedPeers, as: 63400},
		"typo-in-peer-selector-mesh-off": {nodes: seedNodes(true), peers: []tpeer{{name: "node-peer-to-rr", nodeSel: "!has(route-reflector)", peerSel: "has(router-reflector)"}, seedPeers[1]}, as: 63400},
		"reflectors-not-peered-mesh-off": {nodes: seedNodes(true), peers: seedPeers[:1], as: 63400},
	}
	for name, topo := range steps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, topo)
		})
	}
}

// zones: two zones with two reflectors each and two clients each; clients peer with their
// zone's reflectors, reflectors with one another.
func zones(cidA, cidB, cidC, cidD string) topology {
	var nodes []tnode
	for _, z := range []struct{ zone, r1, r2 string }{{"a", cidA, cidB}, {"b", cidC, cidD}} {
		nodes = append(nodes,
			tnode{name: "rr-" + z.zone + "1", v4: true, cid: z.r1, labels: labels("route-reflector", "true", "zone", z.zone)},
			tnode{name: "rr-" + z.zone + "2", v4: true, cid: z.r2, labels: labels("route-reflector", "true", "zone", z.zone)},
			tnode{name: "w-" + z.zone + "1", v4: true, labels: labels("zone", z.zone)},
			tnode{name: "w-" + z.zone + "2", v4: true, labels: labels("zone", z.zone)})
	}
	return topology{nodes: nodes, peers: []tpeer{
		{name: "zone-a", nodeSel: "zone == 'a' && !has(route-reflector)", peerSel: "zone == 'a' && has(route-reflector)"},
		{name: "zone-b", nodeSel: "zone == 'b' && !has(route-reflector)", peerSel: "zone == 'b' && has(route-reflector)"},
		{name: "rr-mesh", nodeSel: "has(route-reflector)", peerSel: "has(route-reflector)"},
	}}
}

func TestHandmade(t *testing.T) {
	t.Parallel()
	shared2735 := func(split bool) topology {
		nodes := []tnode{
			{name: "r1", v4: true, cid: "1.0.0.1", labels: labels("rr", "1")},
			{name: "r2", v4: true, cid: "1.0.0.1", labels: labels("rr", "2")},
			{name: "a", v4: true, labels: labels("side", "1")},
			{name: "b", v4: true, labels: labels("side", "2")},
		}
		peers := []tpeer{
			{name: "a-r1", nodeSel: "side == '1'", peerSel: "rr == '1'"},
			{name: "rr", nodeSel: "has(rr)", peerSel: "has(rr)"},
		}
		if split {
			peers = append(peers, tpeer{name: "b-r2", nodeSel: "side == '2'", peerSel: "rr == '2'"})
		} else {
			peers = append(peers, tpeer{name: "b-both", nodeSel: "side == '2'", peerSel: "has(rr)"})
		}
		return topology{nodes: nodes, peers: peers}
	}
	distinctUnpeered := zones("1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4")
	distinctUnpeered.peers = distinctUnpeered.peers[:2]
	otherAS := topology{nodes: seedNodes(true), peers: seedPeers[:1], as: 63400}
	otherAS.nodes[0].as = 65010 // zyisy: a reflector in another AS speaks eBGP with everyone
	dual := topology{nodes: seedNodes(true), peers: seedPeers, as: 63400}
	for i := range dual.nodes {
		dual.nodes[i].v6 = true
	}
	v6only := topology{nodes: seedNodes(true), peers: seedPeers, as: 63400}
	for i := range v6only.nodes {
		v6only.nodes[i].v4, v6only.nodes[i].v6 = false, true
	}
	v6gap := dual
	v6gap.nodes = append([]tnode(nil), dual.nodes...)
	v6gap.nodes[2].v6 = false // volwl: IPv4 only
	cases := map[string]topology{
		"zones-shared-id":                         zones("1.0.0.1", "1.0.0.1", "1.0.0.1", "1.0.0.1"),
		"zones-id-per-zone":                       zones("1.0.0.1", "1.0.0.1", "1.0.0.2", "1.0.0.2"),
		"zones-distinct-ids":                      zones("1.0.0.1", "1.0.0.2", "1.0.0.3", "1.0.0.4"),
		"zones-distinct-ids-reflectors-unpeered":  distinctUnpeered,
		"2735-clients-split-across-shared-id":     shared2735(true),
		"2735-one-client-on-one-of-two-shared-id": shared2735(false),
		"reflector-in-another-as":                 otherAS,
		"dual-stack":                              dual,
		"ipv6-only":                               v6only,
		"dual-stack-one-node-ipv4-only":           v6gap,
		"peerip-reverse-peering": {nodes: []tnode{
			{name: "r", v4: true, cid: "1.0.0.1", labels: labels()}, {name: "a", v4: true, labels: labels()}, {name: "b", v4: true, labels: labels()},
		}, peers: []tpeer{{name: "to-r", nodeSel: "all()", peerIP: v4(0), as: 64512}}},
		"peerip-reverse-manual": {nodes: []tnode{
			{name: "r", v4: true, cid: "1.0.0.1", labels: labels()}, {name: "a", v4: true, labels: labels()}, {name: "b", v4: true, labels: labels()},
		}, peers: []tpeer{{name: "to-r", nodeSel: "all()", peerIP: v4(0), as: 64512, manual: true}}},
	}
	for name, topo := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, topo)
		})
	}
}

// TestDistinctIDMesh is the layout of the timing table: reflectors with distinct
// cluster IDs peered with one another, each client on two of them. Every reflector treats
// every other as its rr client, and with add paths each loop-free order of reflectors is a
// path of its own: the paths BIRD holds grow with the factorial of the reflectors. At 16
// reflectors real BIRD 1.6.8 never settles (2,800 routes for 23 blocks on one reflector after
// 40 s and growing, birdc answering in tens of seconds), so the comparison runs at 6; the
// model's cost at 16, 20 and 260 is in pkg/bgp's BenchmarkDistinctClusterIDs.
func TestDistinctIDMesh(t *testing.T) {
	t.Parallel()
	const n = 6
	var topo topology
	for i := 0; i < n; i++ {
		topo.nodes = append(topo.nodes, tnode{name: fmt.Sprintf("rr%02d", i), v4: true, cid: fmt.Sprintf("1.0.0.%d", i+1),
			labels: labels("route-reflector", "true", fmt.Sprintf("serves-%d", i), "true", fmt.Sprintf("serves-%d", (i+n-1)%n), "true")})
	}
	for i := 0; i < n; i++ {
		topo.nodes = append(topo.nodes, tnode{name: fmt.Sprintf("c%02d", i), v4: true, labels: labels("group", strconv.Itoa(i))})
		topo.peers = append(topo.peers, tpeer{name: fmt.Sprintf("group-%d", i), nodeSel: fmt.Sprintf("group == '%d'", i), peerSel: fmt.Sprintf("has(serves-%d)", i)})
	}
	topo.peers = append(topo.peers, tpeer{name: "rr-mesh", nodeSel: "has(route-reflector)", peerSel: "has(route-reflector)"})
	check(t, topo)
}
