//go:build e2e

package bird

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"
)

// The cases of what decides routes beyond sessions: BGPFilters, IPPools (disableBGPExport,
// VXLAN beside IPIP, nodes without blocks) and BGP passwords, as Calico 3.31's confd renders
// them.

func playAll(t *testing.T, cases map[string]topology) {
	for name, topo := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, topo)
		})
	}
}

// filterForms are the BGPFilter rule lists a filter case attaches: each form of rule in the
// API (source RemotePeers, each matchOperator, prefixLength min and max, first match
// decides). In the zones layout node i holds 192.168.i.0/26: rr-a1 0, rr-a2 1, w-a1 2, w-a2 3,
// rr-b1 4, rr-b2 5, w-b1 6, w-b2 7; zone a's blocks are inside 192.168.0.0/22.
var filterForms = map[string][]trule{
	"no-transit":             {{action: "Reject", source: "RemotePeers"}},
	"reject-in":              {{action: "Reject", op: "In", cidr: "192.168.0.0/16"}},
	"reject-notin":           {{action: "Reject", op: "NotIn", cidr: "192.168.0.0/22"}},
	"reject-equal":           {{action: "Reject", op: "Equal", cidr: "192.168.2.0/26"}},
	"reject-notequal":        {{action: "Reject", op: "NotEqual", cidr: "192.168.2.0/26"}},
	"reject-in-min27":        {{action: "Reject", op: "In", cidr: "192.168.0.0/16", min: 27}},
	"reject-in-max26":        {{action: "Reject", op: "In", cidr: "192.168.0.0/22", max: 26}},
	"reject-notin-min24-25":  {{action: "Reject", op: "NotIn", cidr: "192.168.0.0/16", min: 24, max: 25}},
	"accept-one-reject-rest": {{action: "Accept", op: "Equal", cidr: "192.168.2.0/26"}, {action: "Reject", op: "In", cidr: "192.168.0.0/16"}},
}

// importForms are filter rule lists used as import filters.
var importForms = map[string][]trule{
	"import-reject-in":     {{action: "Reject", op: "In", cidr: "192.168.4.0/22"}},
	"import-reject-equal":  {{action: "Reject", op: "Equal", cidr: "192.168.3.0/26"}},
	"import-remote-peers":  {{action: "Reject", source: "RemotePeers"}},
	"import-accept-reject": {{action: "Accept", op: "Equal", cidr: "192.168.6.0/26"}, {action: "Reject", op: "In", cidr: "192.168.4.0/22"}},
}

// withFilter is the zones layout with one reflector cluster ID per zone and a filter on the
// peer named on: "rr-mesh" (the reflectors' sessions with one another) or "zone-a" (zone a's
// client sessions, both ends).
func withFilter(on string, f tfilter) topology {
	topo := zones("1.0.0.1", "1.0.0.1", "1.0.0.2", "1.0.0.2")
	topo.filters = []tfilter{f}
	for i := range topo.peers {
		if topo.peers[i].name == on {
			topo.peers[i].filters = []string{f.name}
		}
	}
	return topo
}

// TestFilters: each BGPFilter form, export and import, on reflector sessions and on client
// sessions; the seed story's "no transit" filter and CIDR filter of the issue.
func TestFilters(t *testing.T) {
	t.Parallel()
	cases := map[string]topology{}
	for form, rs := range filterForms {
		for _, on := range []string{"rr-mesh", "zone-a"} {
			cases[form+"-export-on-"+on] = withFilter(on, tfilter{name: form, exportV4: rs})
		}
	}
	for form, rs := range importForms {
		for _, on := range []string{"rr-mesh", "zone-a"} {
			cases[form+"-on-"+on] = withFilter(on, tfilter{name: form, importV4: rs})
		}
	}
	seed := func(f tfilter) topology {
		topo := topology{nodes: seedNodes(true), peers: seedPeersWith("node-peer-to-rr", f.name), as: 63400, filters: []tfilter{f}}
		return topo
	}
	cases["seed-no-transit-on-node-peer-to-rr"] = seed(tfilter{name: "no-transit", exportV4: filterForms["no-transit"]})
	cases["seed-cidr-reject-on-node-peer-to-rr"] = seed(tfilter{name: "reject-pods", exportV4: filterForms["reject-in"]})
	noTransitRR := seed(tfilter{name: "no-transit", exportV4: filterForms["no-transit"]})
	noTransitRR.peers = seedPeersWith("rr-to-rr-peer", "no-transit")
	cases["seed-no-transit-on-rr-to-rr-peer"] = noTransitRR
	// A filter that names no rule of this family, and one that is not there: nothing changes.
	cases["v6-only-filter-on-ipv4-sessions"] = withFilter("zone-a", tfilter{name: "v6-only", exportV6: []trule{{action: "Reject", source: "RemotePeers"}}})
	missing := zones("1.0.0.1", "1.0.0.1", "1.0.0.2", "1.0.0.2")
	missing.peers[0].filters = []string{"not-there"}
	cases["filter-not-there"] = missing
	// IPv6 (bird6): dual-stack zones, filters of both families.
	dual := func(on string, f tfilter) topology {
		topo := withFilter(on, f)
		for i := range topo.nodes {
			topo.nodes[i].v6 = true
		}
		return topo
	}
	cases["ipv6-no-transit-on-zone-a"] = dual("zone-a", tfilter{name: "no-transit-v6", exportV6: []trule{{action: "Reject", source: "RemotePeers"}}})
	cases["ipv6-reject-in-on-rr-mesh"] = dual("rr-mesh", tfilter{name: "reject-v6", exportV6: []trule{{action: "Reject", op: "In", cidr: "fd10::/48"}}})
	cases["ipv6-import-reject-equal-on-zone-a"] = dual("zone-a", tfilter{name: "import-v6", importV6: []trule{{action: "Reject", op: "Equal", cidr: blockOf(tpool{cidr: "fd10::/48", blockSize: 122}, 6).String()}}})
	cases["dual-stack-v4-filter-only"] = dual("zone-a", tfilter{name: "no-transit", exportV4: filterForms["no-transit"]})
	playAll(t, cases)
}

// seedPeersWith are the seed's peers with filter attached to the peer named on.
func seedPeersWith(on, filter string) []tpeer {
	peers := append([]tpeer(nil), seedPeers...)
	for i := range peers {
		if peers[i].name == on {
			peers[i].filters = []string{filter}
		}
	}
	return peers
}

// TestPools: disableBGPExport, pools that select some nodes, a VXLAN pool beside an IPIP one,
// a pool without encapsulation, IPv6 pools.
func TestPools(t *testing.T) {
	t.Parallel()
	seedOff := func() topology { return topology{nodes: seedNodes(true), peers: seedPeers, as: 63400} }
	cases := map[string]topology{}

	noExport := seedOff()
	noExport.pools = []tpool{{name: "pods", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip", noExport: true}}
	cases["disable-bgp-export-seed-mesh-off"] = noExport

	meshNoExport := topology{nodes: seedNodes(false), mesh: true, as: 63400, pools: noExport.pools}
	cases["disable-bgp-export-mesh"] = meshNoExport

	two := zones("1.0.0.1", "1.0.0.1", "1.0.0.2", "1.0.0.2")
	two.pools = []tpool{
		{name: "zone-a", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip", nodeSel: "zone == 'a'"},
		{name: "zone-b", cidr: "10.244.0.0/16", blockSize: 26, mode: "ipip", nodeSel: "zone == 'b'", noExport: true},
	}
	cases["disable-bgp-export-on-one-of-two-pools"] = two

	vx := zones("1.0.0.1", "1.0.0.1", "1.0.0.2", "1.0.0.2")
	vx.pools = []tpool{
		{name: "ipip-zone-a", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip", nodeSel: "zone == 'a'"},
		{name: "vxlan-zone-b", cidr: "10.244.0.0/16", blockSize: 26, mode: "vxlan", nodeSel: "zone == 'b'"},
	}
	cases["vxlan-pool-beside-ipip-pool"] = vx

	both := seedOff()
	both.pools = []tpool{
		{name: "ipip", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip"},
		{name: "vxlan", cidr: "10.244.0.0/16", blockSize: 26, mode: "vxlan"},
	}
	cases["vxlan-and-ipip-pools-on-every-node"] = both

	vxOnly := topology{nodes: seedNodes(true), peers: seedPeers[:1], as: 63400,
		pools: []tpool{{name: "vxlan", cidr: "10.244.0.0/16", blockSize: 26, mode: "vxlan"}}}
	cases["vxlan-only-reflectors-not-peered"] = vxOnly

	noBlock := seedOff()
	noBlock.nodes = seedNodes(true)
	noBlock.nodes[4].labels["no-pods"] = "true" // qtwtv
	noBlock.pools = []tpool{{name: "pods", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip", nodeSel: "!has(no-pods)"}}
	cases["node-without-block"] = noBlock

	plain := seedOff()
	plain.pools = []tpool{{name: "routed", cidr: "192.168.0.0/16", blockSize: 26}}
	cases["no-encapsulation-pool"] = plain

	dual := seedOff()
	dual.nodes = seedNodes(true)
	for i := range dual.nodes {
		dual.nodes[i].v6 = true
	}
	dual.pools = []tpool{
		{name: "v4", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip"},
		{name: "v6", cidr: "fd10::/48", blockSize: 122, noExport: true},
	}
	cases["ipv6-pool-disable-bgp-export"] = dual
	playAll(t, cases)
}

// TestPasswords: a BGP password on both ends of a session from one source establishes; ends
// that take it from different sources (another Secret, or none) never do.
func TestPasswords(t *testing.T) {
	t.Parallel()
	secrets := map[string]map[string]string{
		"bgp-a": {"password": "correct horse"},
		"bgp-b": {"password": "battery staple"},
	}
	a, b := &secretRef{name: "bgp-a", key: "password"}, &secretRef{name: "bgp-b", key: "password"}
	split := func(clientSide, rrSide *secretRef) topology {
		return topology{nodes: seedNodes(true), as: 63400, secrets: secrets, peers: []tpeer{
			{name: "clients-to-rr", nodeSel: "!has(route-reflector)", peerSel: "has(route-reflector)", manual: true, password: clientSide},
			{name: "rr-to-clients", nodeSel: "has(route-reflector)", peerSel: "!has(route-reflector)", manual: true, password: rrSide},
			seedPeers[1],
		}}
	}
	cases := map[string]topology{
		"mesh-password": {nodes: seedNodes(false), mesh: true, as: 63400, secrets: secrets, meshPassword: a},
		"selector-peer-password-both-ends": {nodes: seedNodes(true), as: 63400, secrets: secrets, peers: []tpeer{
			{name: "node-peer-to-rr", nodeSel: "!has(route-reflector)", peerSel: "has(route-reflector)", password: a}, seedPeers[1]}},
		"two-peers-one-secret":            split(a, a),
		"two-peers-two-secrets":           split(a, b),
		"password-on-one-end-only":        split(a, nil),
		"mesh-password-reflectors-peered": {nodes: seedNodes(true), peers: seedPeers, mesh: true, as: 63400, secrets: secrets, meshPassword: b},
	}
	playAll(t, cases)
}

// randomTopology draws a cluster of up to 12 nodes: shared and unique cluster IDs, a few
// ASes, selector, node-scoped and peerIP peers, reverse peering manual, mesh on or off,
// labels as Kubernetes or Calico labels; and IPPools (IPIP, VXLAN, none; disableBGPExport;
// node selectors), BGPFilters of the forms above, or both, each in two thirds of them.
//
// What it leaves out, because confd itself renders it at random: two BGPPeers that give one
// node a session to one address with different parameters (another AS, other filters, a
// password, a reflector's cluster ID a peerIP peer does not carry). confd keeps whichever it
// meets first while ranging over a Go map of BGPPeers (client.go, updatePeersV1: "If we
// already have an entry for that path, it wins"), so the same objects render one way or the
// other from run to run. So the filters, when there are any, are on every peer alike, and a
// peerIP peer points at an address of its own on the nodes' network where no node answers
// (an outside router that is down); peerIP peerings with nodes are TestHandmade's.
func randomTopology(rng *rand.Rand) topology {
	var topo topology
	topo.mesh = rng.Intn(4) == 0
	topo.as = 64512
	topo.v3 = rng.Intn(2) == 0
	n := 3 + rng.Intn(10)
	for i := 0; i < n; i++ {
		tn := tnode{name: fmt.Sprintf("n%d", i), v4: true, labels: labels("g", strconv.Itoa(rng.Intn(3))), calicoLabels: rng.Intn(3) == 0}
		if rng.Intn(2) == 0 {
			tn.cid = fmt.Sprintf("1.0.0.%d", 1+rng.Intn(3))
			tn.labels["rr"] = "true"
		}
		if rng.Intn(6) == 0 {
			tn.as = uint32(65001 + rng.Intn(2))
		}
		topo.nodes = append(topo.nodes, tn)
	}
	exprs := []string{"has(rr)", "!has(rr)", "g == '0'", "g == '1'", "g != '2'", "all()"}
	for p := 0; p < 1+rng.Intn(5); p++ {
		peer := tpeer{name: fmt.Sprintf("p%d", p), manual: rng.Intn(6) == 0}
		switch rng.Intn(6) {
		case 0:
			peer.node = fmt.Sprintf("n%d", rng.Intn(n))
			peer.peerSel = exprs[rng.Intn(len(exprs))]
		case 1:
			peer.peerIP = v4(200 + p)
			peer.as = []uint32{64512, 65001, 65002}[rng.Intn(3)]
			if rng.Intn(2) == 0 {
				peer.nodeSel = exprs[rng.Intn(len(exprs))]
			}
		default:
			peer.nodeSel = exprs[rng.Intn(len(exprs))]
			peer.peerSel = exprs[rng.Intn(len(exprs))]
		}
		topo.peers = append(topo.peers, peer)
	}
	// Pools, filters or both, each in two thirds of the topologies.
	withPools, withFilters := true, true
	switch rng.Intn(3) {
	case 0:
		withPools = false
	case 1:
		withFilters = false
	}
	if withPools {
		cidrs := []string{"192.168.0.0/16", "10.244.0.0/16"}
		for k := 0; k < 1+rng.Intn(2); k++ {
			pool := tpool{name: fmt.Sprintf("pool%d", k), cidr: cidrs[k], blockSize: 26,
				mode: []string{"ipip", "vxlan", ""}[rng.Intn(3)], noExport: rng.Intn(5) == 0}
			if rng.Intn(2) == 0 {
				pool.nodeSel = exprs[rng.Intn(len(exprs))]
			}
			topo.pools = append(topo.pools, pool)
		}
	}
	if withFilters {
		block := func() string { return blockOf(tpool{cidr: "192.168.0.0/16", blockSize: 26}, rng.Intn(n)).String() }
		cidrRules := []func() trule{
			func() trule { return trule{action: "Reject", source: "RemotePeers"} },
			func() trule { return trule{action: "Reject", op: "In", cidr: "192.168.0.0/16"} },
			func() trule { return trule{action: "Reject", op: "NotIn", cidr: "192.168.0.0/22"} },
			func() trule { return trule{action: "Reject", op: "Equal", cidr: block()} },
			func() trule { return trule{action: "Reject", op: "NotEqual", cidr: block()} },
			func() trule { return trule{action: "Accept", op: "Equal", cidr: block()} },
			func() trule { return trule{action: "Reject", op: "In", cidr: "192.168.0.0/20", min: 26, max: 26} },
			func() trule { return trule{action: "Reject", op: "In", cidr: "10.244.0.0/16"} },
		}
		for k := 0; k < 1+rng.Intn(2); k++ {
			f := tfilter{name: fmt.Sprintf("f%d", k)}
			var rs []trule
			for r := 0; r < 1+rng.Intn(2); r++ {
				rs = append(rs, cidrRules[rng.Intn(len(cidrRules))]())
			}
			if rng.Intn(3) == 0 {
				f.importV4 = rs
			} else {
				f.exportV4 = rs
			}
			topo.filters = append(topo.filters, f)
			for i := range topo.peers {
				topo.peers[i].filters = append(topo.peers[i].filters, f.name)
			}
		}
	}
	return topo
}

func TestRandomTopologies(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	if s := os.Getenv("RRGUARD_BIRD_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	count := 32
	if s := os.Getenv("RRGUARD_BIRD_RANDOM"); s != "" {
		count, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d (RRGUARD_BIRD_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < count; i++ {
		topo := randomTopology(rng)
		t.Run(fmt.Sprintf("seed-%d-%d", seed, i), func(t *testing.T) {
			t.Parallel()
			check(t, topo)
		})
	}
}
