package bgp

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
)

// TestSameGraphInputs: where a derived analysis takes over the session graph of the one it
// comes from without laying it out (sameGraphInputs), laying it out gives that graph. Rack
// BGPPeers whose selectors take other racks in, filters moved between peers, selectors
// written anew and peers replaced, with and without the mesh: the changes that leave the
// sessions as they were but not their filters must not be taken for the same graph.
func TestSameGraphInputs(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	filters := map[string]*Filter{
		"no-export": {Name: "no-export", Export: [2][]FilterRule{IPv4: {{CIDR: netip.MustParsePrefix("10.0.0.0/8"), Op: In}}}},
		"no-learnt": {Name: "no-learnt", Export: [2][]FilterRule{IPv4: {{RemotePeers: true}}}},
	}
	names := []string{"", "no-export", "no-learnt"}
	taken, filtersOnly := 0, 0
	for iter := 0; iter < 300; iter++ {
		topo := Topology{Mesh: rng.Intn(3) == 0, AS: 64512, Filters: filters}
		topo.Nodes = append(topo.Nodes, node("rr1", "10.0.0.1", "1.0.0.1", "route-reflector=true"), node("rr2", "10.0.0.2", "1.0.0.1", "route-reflector=true"))
		for i := range 16 {
			topo.Nodes = append(topo.Nodes, node(fmt.Sprintf("n%02d", i), fmt.Sprintf("10.0.1.%d", i+1), "", fmt.Sprintf("rack=%d", i%4)))
		}
		peer := func(name, nodes string, fl string) Peer {
			p := Peer{Name: name, NodeSelector: sel(t, nodes), PeerSelector: sel(t, "has(route-reflector)")}
			if fl != "" {
				p.Filters = []string{fl}
			}
			return p
		}
		topo.Peers = []Peer{peer("rr", "has(route-reflector)", names[rng.Intn(3)])}
		for r := range 4 {
			topo.Peers = append(topo.Peers, peer(fmt.Sprintf("rack-%d", r), fmt.Sprintf("rack == '%d'", r), names[rng.Intn(3)]))
		}
		a := Analyze(&topo)
		changed := topo
		changed.Peers = slices.Clone(topo.Peers)
		q := 1 + rng.Intn(4)
		switch rng.Intn(4) {
		case 0: // another rack too
			changed.Peers[q].NodeSelector = sel(t, fmt.Sprintf("rack in {'%d', '%d'}", q-1, rng.Intn(4)))
		case 1: // other filters
			changed.Peers[q].Filters = []string{names[rng.Intn(3)]}
		case 2: // the selector written anew
			changed.Peers[q].NodeSelector = sel(t, fmt.Sprintf("all() && rack == '%d'", q-1))
		default: // another rack instead, other filters
			changed.Peers[q] = peer(changed.Peers[q].Name, fmt.Sprintf("rack == '%d'", rng.Intn(4)), names[rng.Intn(3)])
		}
		got := a.WithPeers(&changed)
		for _, f := range families {
			if a.graphs[f] == nil {
				continue
			}
			built, err := got.buildGraph(f)
			if err != nil {
				t.Fatal(err)
			}
			same := built.sameAs(a.graphs[f])
			if got.sameGraphInputs(a, f) {
				taken++
				if !same {
					t.Fatalf("iteration %d, family %v: taken for the same session graph, laid out it differs", iter, f)
				}
			} else if !same && slices.EqualFunc(got.session[f], a.session[f], slices.Equal[[]uint64]) {
				filtersOnly++ // the same sessions, other filters: told apart
			}
		}
		if g, w := brokenPairs(got), brokenPairs(Analyze(&changed)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d: WithPeers %v\nAnalyze %v", iter, g, w)
		}
	}
	if taken < 60 || filtersOnly < 20 {
		t.Fatalf("%d graphs taken over, %d told apart by their filters alone: the test says little", taken, filtersOnly)
	}
}
