package bgp

import (
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rrguard/rrguard/pkg/selector"
)

func sel(t testing.TB, expr string) *selector.Selector {
	t.Helper()
	s, err := selector.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

func node(name, ip, cid string, labels ...string) *Node {
	l := map[string]string{"kubernetes.io/hostname": name}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	return &Node{Name: name, Labels: l, ClusterID: cid, IPv4: ip, Ready: true}
}

// brokenPairs lists "from->to" for every pair of taking-part nodes whose routes do not flow.
func brokenPairs(a *Analysis) []string {
	var out []string
	for i := range a.Topology.Nodes {
		for j := range a.Topology.Nodes {
			if i == j || a.ClassOf[i] < 0 || a.ClassOf[j] < 0 {
				continue
			}
			from, to := a.Topology.Nodes[i].Name, a.Topology.Nodes[j].Name
			if !a.Learns(from, to) {
				out = append(out, from+"->"+to)
			}
		}
	}
	sort.Strings(out)
	return out
}

func seed(t testing.TB) Topology {
	return Topology{
		Nodes: []*Node{
			node("zyisy", "10.30.0.13", "1.0.0.1", "route-reflector=true"),
			node("uqwst", "10.30.0.14", ""),
			node("volwl", "10.30.0.15", ""),
			node("rxgks", "10.30.0.16", "1.0.0.1", "route-reflector=true"),
			node("qtwtv", "10.30.0.17", ""),
		},
		Peers: []Peer{
			{Name: "node-peer-to-rr", NodeSelector: sel(t, "!has(route-reflector)"), PeerSelector: sel(t, "has(route-reflector)")},
			{Name: "rr-to-rr-peer", NodeSelector: sel(t, "has(route-reflector)"), PeerSelector: sel(t, "has(route-reflector)")},
		},
		AS: 63400,
	}
}

func TestPropagation(t *testing.T) {
	cases := map[string]struct {
		topo func(t *testing.T) Topology
		want []string
	}{
		"mesh on, no reflectors": {func(t *testing.T) Topology {
			return Topology{Mesh: true, Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", ""), node("c", "10.0.0.3", "")}}
		}, nil},
		"mesh off, no peers": {func(t *testing.T) Topology {
			return Topology{Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", "")}}
		}, []string{"a->b", "b->a"}},
		"seed end state": {func(t *testing.T) Topology { return seed(t) }, nil},
		"seed without reflector-to-reflector peering": {func(t *testing.T) Topology {
			s := seed(t)
			s.Peers = s.Peers[:1]
			return s
		}, []string{"rxgks->zyisy", "zyisy->rxgks"}},
		"reflector gets a cluster ID while the mesh is on, no peers": {func(t *testing.T) Topology {
			return Topology{Mesh: true, Nodes: []*Node{node("r", "10.0.0.1", "1.0.0.1"), node("b", "10.0.0.2", ""), node("c", "10.0.0.3", "")}}
		}, []string{"b->r", "c->r", "r->b", "r->c"}},
		// r2 keeps what r1 reflects from a (BIRD checks CLUSTER_LIST only on rr client
		// sessions, and r1 is no client of r2), but never passes it to its client b.
		"shared cluster ID, clients on different reflectors (#2735)": {func(t *testing.T) Topology {
			return Topology{
				Nodes: []*Node{node("r1", "10.0.0.1", "1.0.0.1", "rr=1"), node("r2", "10.0.0.2", "1.0.0.1", "rr=2"), node("a", "10.0.0.3", "", "side=1"), node("b", "10.0.0.4", "", "side=2")},
				Peers: []Peer{
					{Name: "a-r1", NodeSelector: sel(t, "side == '1'"), PeerSelector: sel(t, "rr == '1'")},
					{Name: "b-r2", NodeSelector: sel(t, "side == '2'"), PeerSelector: sel(t, "rr == '2'")},
					{Name: "rr", NodeSelector: sel(t, "has(rr)"), PeerSelector: sel(t, "has(rr)")},
				},
			}
		}, []string{"a->b", "b->a"}},
		"distinct cluster IDs, clients on different reflectors": {func(t *testing.T) Topology {
			return Topology{
				Nodes: []*Node{node("r1", "10.0.0.1", "1.0.0.1", "rr=1"), node("r2", "10.0.0.2", "1.0.0.2", "rr=2"), node("a", "10.0.0.3", "", "side=1"), node("b", "10.0.0.4", "", "side=2")},
				Peers: []Peer{
					{Name: "a-r1", NodeSelector: sel(t, "side == '1'"), PeerSelector: sel(t, "rr == '1'")},
					{Name: "b-r2", NodeSelector: sel(t, "side == '2'"), PeerSelector: sel(t, "rr == '2'")},
					{Name: "rr", NodeSelector: sel(t, "has(rr)"), PeerSelector: sel(t, "has(rr)")},
				},
			}
		}, nil},
		"labelled reflector without a cluster ID reflects nothing": {func(t *testing.T) Topology {
			return Topology{
				Nodes: []*Node{node("r", "10.0.0.1", "", "route-reflector=true"), node("a", "10.0.0.2", ""), node("b", "10.0.0.3", "")},
				Peers: []Peer{{Name: "p", NodeSelector: sel(t, "!has(route-reflector)"), PeerSelector: sel(t, "has(route-reflector)")}},
			}
		}, []string{"a->b", "b->a"}},
		"selector that did not parse selects nothing": {func(t *testing.T) Topology {
			s := seed(t)
			s.Peers[0].PeerSelector = &selector.Selector{}
			return s
		}, []string{"qtwtv->rxgks", "qtwtv->uqwst", "qtwtv->volwl", "qtwtv->zyisy", "rxgks->qtwtv", "rxgks->uqwst", "rxgks->volwl", "uqwst->qtwtv", "uqwst->rxgks", "uqwst->volwl", "uqwst->zyisy", "volwl->qtwtv", "volwl->rxgks", "volwl->uqwst", "volwl->zyisy", "zyisy->qtwtv", "zyisy->uqwst", "zyisy->volwl"}},
		"reverse peering manual without the other side": {func(t *testing.T) Topology {
			s := seed(t)
			s.Peers[0].ReverseManual = true
			return s
		}, []string{"qtwtv->rxgks", "qtwtv->uqwst", "qtwtv->volwl", "qtwtv->zyisy", "rxgks->qtwtv", "rxgks->uqwst", "rxgks->volwl", "uqwst->qtwtv", "uqwst->rxgks", "uqwst->volwl", "uqwst->zyisy", "volwl->qtwtv", "volwl->rxgks", "volwl->uqwst", "volwl->zyisy", "zyisy->qtwtv", "zyisy->uqwst", "zyisy->volwl"}},
		"NotReady reflector: the other one carries the routes": {func(t *testing.T) Topology {
			s := seed(t)
			s.Nodes[3].Ready = false
			return s
		}, nil},
		"both reflectors NotReady (#9259)": {func(t *testing.T) Topology {
			s := seed(t)
			s.Nodes[0].Ready = false
			s.Nodes[3].Ready = false
			return s
		}, []string{"qtwtv->uqwst", "qtwtv->volwl", "uqwst->qtwtv", "uqwst->volwl", "volwl->qtwtv", "volwl->uqwst"}},
		"reflector in another AS: eBGP to clients": {func(t *testing.T) Topology {
			s := seed(t)
			s.Peers = s.Peers[:1]
			s.Nodes = append(s.Nodes[:3], s.Nodes[4])
			s.Nodes[0].AS = 65000
			return s
		}, []string{"qtwtv->uqwst", "qtwtv->volwl", "uqwst->qtwtv", "uqwst->volwl", "volwl->qtwtv", "volwl->uqwst"}},
		"AS per node through an external eBGP router": {func(t *testing.T) Topology {
			a, b := node("a", "10.0.0.1", ""), node("b", "10.0.0.2", "")
			a.AS, b.AS = 65001, 65002
			return Topology{Nodes: []*Node{a, b}, Peers: []Peer{{Name: "tor", PeerIP: "10.0.0.254", AS: 65000}}}
		}, nil},
		"same AS through an external eBGP router: AS_PATH loop": {func(t *testing.T) Topology {
			return Topology{Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", "")}, Peers: []Peer{{Name: "tor", PeerIP: "10.0.0.254", AS: 65000}}}
		}, []string{"a->b", "b->a"}},
		"external iBGP reflector": {func(t *testing.T) Topology {
			return Topology{Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", "")}, Peers: []Peer{{Name: "tor", PeerIP: "10.0.0.254", AS: DefaultAS}}}
		}, nil},
		// confd renders "neighbor 10.0.0.254 as 0;": BIRD refuses the configuration of every
		// node the peer applies to, mesh sessions included.
		"peerIP without AS: the nodes it applies to lose every session": {func(t *testing.T) Topology {
			return Topology{Mesh: true, Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", ""), node("c", "10.0.0.3", "")},
				Peers: []Peer{{Name: "tor", Node: "a", PeerIP: "10.0.0.254"}}}
		}, []string{"a->b", "a->c", "b->a", "c->a"}},
		"node without address takes part in nothing": {func(t *testing.T) Topology {
			return Topology{Mesh: true, Nodes: []*Node{node("a", "10.0.0.1", ""), node("b", "10.0.0.2", ""), node("c", "", "")}}
		}, nil},
		"IPv6 only": {func(t *testing.T) Topology {
			a, b := node("a", "", ""), node("b", "", "")
			a.IPv6, b.IPv6 = "fd00::1", "fd00::2"
			return Topology{Nodes: []*Node{a, b}, Peers: []Peer{{Name: "p", PeerSelector: sel(t, "all()")}}}
		}, nil},
		"dual stack, IPv6 peering missing": {func(t *testing.T) Topology {
			a, b := node("a", "10.0.0.1", ""), node("b", "10.0.0.2", "")
			a.IPv6, b.IPv6 = "fd00::1", "fd00::2"
			return Topology{Nodes: []*Node{a, b}, Peers: []Peer{{Name: "p", PeerIP: "10.0.0.2", Node: "a"}, {Name: "q", PeerIP: "10.0.0.1", Node: "b"}}}
		}, []string{"a->b", "b->a"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			topo := c.topo(t)
			got := brokenPairs(Analyze(&topo))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("broken pairs = %v\nwant %v", got, c.want)
			}
			if perNode := brokenPairs(analyze(&topo, true)); fmt.Sprint(perNode) != fmt.Sprint(got) {
				t.Errorf("class reduction disagrees with the per-node simulation:\nclasses  %v\nper node %v", got, perNode)
			}
		})
	}
}

func TestReflectorsOf(t *testing.T) {
	topo := seed(t)
	a := Analyze(&topo)
	if got := a.ReflectorsOf(a.Class("uqwst")); fmt.Sprint(got) != "[rxgks zyisy]" {
		t.Errorf("ReflectorsOf(uqwst) = %v", got)
	}
	if got := a.SessionCount(a.Class("zyisy")); got != 4 {
		t.Errorf("zyisy has %d sessions, want 4 (3 clients + rxgks)", got)
	}
	if len(a.Classes) != 2 {
		t.Errorf("seed has %d classes, want 2 (reflectors, clients)", len(a.Classes))
	}
}

// TestClassReductionMatchesPerNode checks on random small clusters that simulating classes
// of interchangeable nodes gives exactly the per-node answer.
func TestClassReductionMatchesPerNode(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	exprs := []string{"has(route-reflector)", "!has(route-reflector)", "zone == 'a'", "zone != 'a'", "all()", "rack in {'1','2'}"}
	for iter := 0; iter < 400; iter++ {
		var topo Topology
		topo.Mesh = rng.Intn(2) == 0
		topo.AS = []uint32{0, 64512, 65000}[rng.Intn(3)]
		n := 2 + rng.Intn(7)
		for i := 0; i < n; i++ {
			nd := node(fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.0.%d", i+1), "")
			switch rng.Intn(4) {
			case 0:
				nd.ClusterID = "1.0.0.1"
				nd.Labels["route-reflector"] = "true"
			case 1:
				nd.ClusterID = "1.0.0.2"
				nd.Labels["route-reflector"] = "true"
			}
			nd.Labels["zone"] = []string{"a", "b"}[rng.Intn(2)]
			nd.Labels["rack"] = fmt.Sprint(rng.Intn(3))
			if rng.Intn(6) == 0 {
				nd.AS = 65001
			}
			if rng.Intn(8) == 0 {
				nd.Ready = false
			}
			topo.Nodes = append(topo.Nodes, nd)
		}
		for p := 0; p < rng.Intn(4); p++ {
			peer := Peer{Name: fmt.Sprintf("p%d", p), PeerSelector: sel(t, exprs[rng.Intn(len(exprs))]), ReverseManual: rng.Intn(5) == 0}
			if rng.Intn(3) > 0 {
				peer.NodeSelector = sel(t, exprs[rng.Intn(len(exprs))])
			}
			topo.Peers = append(topo.Peers, peer)
		}
		got, want := brokenPairs(Analyze(&topo)), brokenPairs(analyze(&topo, true))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("iteration %d: classes %v\nper node %v\ntopology %+v", iter, got, want, topo)
		}
	}
}

// TestWithNodeMatchesAnalyze checks the incremental path used by admission: re-classifying
// one changed node must give what a fresh analysis gives.
func TestWithNodeMatchesAnalyze(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	randomNode := func(name string, i int) *Node {
		nd := node(name, fmt.Sprintf("10.0.1.%d", i+1), "")
		switch rng.Intn(5) {
		case 0:
			nd.ClusterID = "1.0.0.1"
			nd.Labels["route-reflector"] = "true"
		case 1:
			nd.Labels["route-reflector"] = "true"
		case 2:
			nd.IPv4 = ""
		}
		nd.Ready = rng.Intn(6) > 0
		nd.Labels["zone"] = []string{"a", "b"}[rng.Intn(2)]
		return nd
	}
	for iter := 0; iter < 300; iter++ {
		base := seed(t)
		base.Mesh = rng.Intn(3) == 0
		if rng.Intn(2) == 0 {
			base.Peers = append(base.Peers, Peer{Name: "zone", NodeSelector: sel(t, "zone == 'a'"), PeerSelector: sel(t, "has(route-reflector)")})
		}
		for i := 0; i < rng.Intn(4); i++ {
			base.Nodes = append(base.Nodes, randomNode(fmt.Sprintf("extra%d", i), i))
		}
		a := Analyze(&base)
		changed := base
		changed.Nodes = append([]*Node(nil), base.Nodes...)
		i := rng.Intn(len(base.Nodes) + 1)
		name := fmt.Sprintf("new%d", iter)
		if i < len(base.Nodes) {
			name = base.Nodes[i].Name
			changed.Nodes[i] = randomNode(name, 100+i)
		} else {
			changed.Nodes = append(changed.Nodes, randomNode(name, 100+i))
		}
		got, want := a.WithNode(&changed, i), Analyze(&changed)
		if g, w := brokenPairs(got), brokenPairs(want); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d (node %s): WithNode %v\nAnalyze %v", iter, name, g, w)
		}
		for _, n := range changed.Nodes {
			gc, wc := got.Class(n.Name), want.Class(n.Name)
			if (gc < 0) != (wc < 0) {
				t.Fatalf("iteration %d: node %s takes part: WithNode %v, Analyze %v", iter, n.Name, gc >= 0, wc >= 0)
			}
			if gc >= 0 && (got.SessionCount(gc) != want.SessionCount(wc) || fmt.Sprint(got.ReflectorsOf(gc)) != fmt.Sprint(want.ReflectorsOf(wc))) {
				t.Fatalf("iteration %d: node %s sessions %d/%d reflectors %v/%v", iter, n.Name, got.SessionCount(gc), want.SessionCount(wc), got.ReflectorsOf(gc), want.ReflectorsOf(wc))
			}
		}
		// The base analysis must be untouched.
		if g, w := brokenPairs(a), brokenPairs(Analyze(&base)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d: WithNode changed its base analysis", iter)
		}
	}
}

// TestWithPeersMatchesAnalyze checks the BGPPeer path against a fresh analysis: peers whose
// selectors were evaluated already, and new selectors (of one or several labels, some that
// vary inside a class), node names and peer IPs, which split classes.
func TestWithPeersMatchesAnalyze(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	pool := []string{"has(route-reflector)", "!has(route-reflector)", "zone == 'a'", "all()", "zone != 'a'", "has(nope",
		"rack == '1'", "rack in {'1', '2'} && zone == 'a'", "!has(rack) || has(route-reflector)", "a == '1' && b == '1' && c == '1' && d == '1' && rack == '1'"}
	parsed := map[string]*selector.Selector{}
	get := func(expr string) *selector.Selector {
		if s, ok := parsed[expr]; ok {
			return s
		}
		s, err := selector.Parse(expr)
		if err != nil {
			s = selector.Selector{}
		}
		parsed[expr] = &s
		return &s
	}
	randomPeer := func(name string) Peer {
		p := Peer{Name: name, PeerSelector: get(pool[rng.Intn(len(pool))]), ReverseManual: rng.Intn(6) == 0}
		switch rng.Intn(6) {
		case 0:
			p.Node = []string{"zyisy", "uqwst", "qtwtv", "nope"}[rng.Intn(4)]
		case 1, 2, 3:
			p.NodeSelector = get(pool[rng.Intn(len(pool))])
		}
		if rng.Intn(6) == 0 {
			p.PeerSelector, p.PeerIP = nil, []string{"10.30.0.13", "10.30.0.15", "192.0.2.1"}[rng.Intn(3)]
		}
		return p
	}
	splits, kept := 0, 0
	for iter := 0; iter < 400; iter++ {
		base := seed(t)
		base.Mesh = rng.Intn(3) == 0
		for i, n := range base.Nodes {
			n.Labels["zone"] = []string{"a", "b"}[(i+iter)%2]
			if r := rng.Intn(4); r > 0 {
				n.Labels["rack"] = fmt.Sprint(r)
			}
			for _, k := range []string{"a", "b", "c", "d"} {
				n.Labels[k] = fmt.Sprint(rng.Intn(2))
			}
			n.Ready = rng.Intn(8) > 0
		}
		base.Peers = nil
		for i := 0; i < 1+rng.Intn(3); i++ {
			base.Peers = append(base.Peers, randomPeer(fmt.Sprintf("p%d", i)))
		}
		a := Analyze(&base)
		changed := base
		changed.Peers = append([]Peer(nil), base.Peers...)
		switch rng.Intn(5) {
		case 4:
			// The same sides, another password, port or local AS: the classes stay, the
			// sessions do not.
			switch p := &changed.Peers[0]; rng.Intn(3) {
			case 0:
				p.Password = PasswordSource("s", "k")
			case 1:
				p.Port = 1179
			default:
				p.LocalAS = 64999
			}
		case 0:
			changed.Peers = append(changed.Peers, randomPeer("new"))
		case 1:
			changed.Peers = changed.Peers[1:]
		case 2:
			// The same peer with its selectors written anew: the same nodes, unless one did
			// not parse (now it does: it selects every node).
			rewrite := func(sel *selector.Selector) *selector.Selector {
				if sel == nil {
					return nil
				}
				return get("all() && (" + sel.String() + ")")
			}
			changed.Peers[0].NodeSelector, changed.Peers[0].PeerSelector = rewrite(changed.Peers[0].NodeSelector), rewrite(changed.Peers[0].PeerSelector)
		default:
			changed.Peers[0] = randomPeer(changed.Peers[0].Name)
		}
		got := a.WithPeers(&changed)
		if len(got.Classes) > len(a.Classes) {
			splits++
		}
		if len(a.Classes) > 0 && len(got.session[IPv4]) > 0 && &got.session[IPv4][0] == &a.session[IPv4][0] {
			kept++
		}
		want := Analyze(&changed)
		if g, w := brokenPairs(got), brokenPairs(want); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d: WithPeers %v\nAnalyze %v", iter, g, w)
		}
		for p := range changed.Peers {
			gl, gr := got.PeerMatches(p)
			wl, wr := want.PeerMatches(p)
			if gl != wl || gr != wr {
				t.Fatalf("iteration %d: peer %s matches %d/%d, want %d/%d", iter, changed.Peers[p].Name, gl, gr, wl, wr)
			}
		}
		for _, n := range changed.Nodes {
			gc, wc := got.Class(n.Name), want.Class(n.Name)
			if gc >= 0 && (got.SessionCount(gc) != want.SessionCount(wc) || fmt.Sprint(got.ReflectorsOf(gc)) != fmt.Sprint(want.ReflectorsOf(wc))) {
				t.Fatalf("iteration %d: node %s sessions %d/%d", iter, n.Name, got.SessionCount(gc), want.SessionCount(wc))
			}
			if g, w := fmt.Sprint(got.NodeSessions(n.Name)), fmt.Sprint(want.NodeSessions(n.Name)); g != w {
				t.Fatalf("iteration %d: node %s sessions\n%s\nwant %s", iter, n.Name, g, w)
			}
		}
		if g, w := brokenPairs(a), brokenPairs(Analyze(&base)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d: WithPeers changed its base analysis", iter)
		}
		// A node change on top of the derived analysis (the single-point what-if does this).
		i := rng.Intn(len(changed.Nodes))
		again := changed
		again.Nodes = append([]*Node(nil), changed.Nodes...)
		lost := *again.Nodes[i]
		lost.Ready = rng.Intn(2) == 0
		lost.ClusterID = []string{"", "1.0.0.1", "1.0.0.9"}[rng.Intn(3)]
		again.Nodes[i] = &lost
		if g, w := brokenPairs(got.WithNode(&again, i)), brokenPairs(Analyze(&again)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("iteration %d: WithNode after WithPeers %v\nAnalyze %v", iter, g, w)
		}
	}
	if splits < 40 {
		t.Errorf("only %d changes in 400 split a class", splits)
	}
	if kept < 40 {
		t.Errorf("only %d changes in 400 kept the sessions of the analysis they were derived from", kept)
	}
}

func TestWithConfigMatchesAnalyze(t *testing.T) {
	for _, mesh := range []bool{false, true} {
		base := seed(t)
		base.Peers = base.Peers[:1] // reflectors not peered: the mesh decides what breaks
		base.Mesh = !mesh
		a := Analyze(&base)
		changed := base
		changed.Mesh = mesh
		got := a.WithConfig(&changed)
		if got == nil {
			t.Fatal("same AS: the classes must be kept")
		}
		if g, w := brokenPairs(got), brokenPairs(Analyze(&changed)); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("mesh %v: WithConfig %v, Analyze %v", mesh, g, w)
		}
	}
	base := seed(t)
	changed := base
	changed.AS = 65001
	if Analyze(&base).WithConfig(&changed) != nil {
		t.Error("a new cluster AS must fall back to a full analysis")
	}
	// A listen port changed, the default's or one node's: the classes' ports (part of their
	// keys: a node's class may change) change with it. A full analysis.
	for name, change := range map[string]func(*Topology){
		"default": func(t *Topology) { t.ListenPort = 1790 },
		"node":    func(t *Topology) { t.ListenPorts = map[string]uint16{"zyisy": 1790} },
	} {
		changed := base
		change(&changed)
		if Analyze(&base).WithConfig(&changed) != nil {
			t.Errorf("a %s listen port changed must fall back to a full analysis", name)
		}
	}
}

// TestWithPeersConcurrently: analyses derived at once from one analysis (webhook requests
// judged against one snapshot) share its label index safely and agree.
func TestWithPeersConcurrently(t *testing.T) {
	base := seed(t)
	for i, n := range base.Nodes {
		n.Labels["rack"] = fmt.Sprint(i % 2)
	}
	a := Analyze(&base)
	changed := base
	changed.Peers = append(slices.Clone(base.Peers), Peer{Name: "rack", NodeSelector: sel(t, "rack == '1'"), PeerSelector: sel(t, "has(route-reflector)")})
	want := fmt.Sprint(brokenPairs(Analyze(&changed)))
	var wg sync.WaitGroup
	got := make([]string, 8)
	for g := range got {
		wg.Go(func() { got[g] = fmt.Sprint(brokenPairs(a.WithPeers(&changed))) })
	}
	wg.Wait()
	for g := range got {
		if got[g] != want {
			t.Errorf("goroutine %d: %s, want %s", g, got[g], want)
		}
	}
}

// TestWithNodeBetweenLargeClasses: a node moving between classes that keep three members or
// more (a node moving to another rack) keeps the analysis's sessions and propagation
// (sameShapeAs); a chain of such moves, mixed with moves that empty or make classes, answers
// as fresh analyses do: who learns whom, sessions, what a reflector's failure would cut.
func TestWithNodeBetweenLargeClasses(t *testing.T) {
	rng := rand.New(rand.NewSource(17))
	zones := []string{"a", "b", "c", "d"}
	kept := 0
	for iter := 0; iter < 60; iter++ {
		topo := Topology{Mesh: rng.Intn(3) == 0, AS: 64512}
		topo.Nodes = append(topo.Nodes, node("rr1", "10.0.0.1", "1.0.0.1", "route-reflector=true"), node("rr2", "10.0.0.2", []string{"1.0.0.1", "1.0.0.2"}[rng.Intn(2)], "route-reflector=true"))
		for i := range 24 {
			topo.Nodes = append(topo.Nodes, node(fmt.Sprintf("n%02d", i), fmt.Sprintf("10.0.1.%d", i+1), "", "zone="+zones[i%4]))
		}
		// Zones a and b peer with the reflectors, c with rr1 only, d with nobody.
		topo.Peers = []Peer{
			{Name: "ab", NodeSelector: sel(t, "zone in {'a', 'b'}"), PeerSelector: sel(t, "has(route-reflector)")},
			{Name: "c", NodeSelector: sel(t, "zone == 'c'"), PeerSelector: sel(t, "kubernetes.io/hostname == 'rr1'")},
			{Name: "rr", NodeSelector: sel(t, "has(route-reflector)"), PeerSelector: sel(t, "has(route-reflector)")},
		}
		a := Analyze(&topo)
		for step := 0; step < 8; step++ {
			changed := topo
			changed.Nodes = slices.Clone(topo.Nodes)
			i := 2 + rng.Intn(24)
			moved := *changed.Nodes[i]
			moved.Labels = maps.Clone(moved.Labels)
			moved.Labels["zone"] = zones[rng.Intn(4)]
			changed.Nodes[i] = &moved
			before := fmt.Sprint(a.ClassOf, a.Classes)
			got, want := a.WithNode(&changed, i), Analyze(&changed)
			if fmt.Sprint(a.ClassOf, a.Classes) != before {
				t.Fatalf("iteration %d step %d: WithNode changed its base analysis's classes", iter, step)
			}
			if got.graphs[IPv4] == a.graphs[IPv4] && len(got.Classes) == len(a.Classes) && got.ClassOf[i] != a.ClassOf[i] {
				kept++
			}
			if g, w := brokenPairs(got), brokenPairs(want); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Fatalf("iteration %d step %d: WithNode %v\nAnalyze %v", iter, step, g, w)
			}
			for _, n := range changed.Nodes {
				if g, w := fmt.Sprint(got.NodeSessions(n.Name)), fmt.Sprint(want.NodeSessions(n.Name)); g != w {
					t.Fatalf("iteration %d step %d: %s sessions\n%s\nwant %s", iter, step, n.Name, g, w)
				}
			}
			for _, rr := range []string{"rr1", "rr2"} {
				gg, gok := got.LostIfDown(got.Class(rr))
				wg, wok := want.LostIfDown(want.Class(rr))
				g, w := nodePairs(got, gg), nodePairs(want, wg)
				if gok != wok || fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("iteration %d step %d: %s down: WithNode %v %v, Analyze %v %v", iter, step, rr, gok, g, wok, w)
				}
			}
			topo, a = changed, got
		}
	}
	if kept < 100 {
		t.Fatalf("only %d of 480 moves kept the analysis's shape: the test says little about it", kept)
	}
}

// nodePairs lists the gaps as "family from->to" over the classes' members, sorted.
func nodePairs(a *Analysis, gaps []Gap) []string {
	var out []string
	for _, g := range gaps {
		for _, x := range a.Classes[g.From].Members {
			for _, y := range a.Classes[g.To].Members {
				if x != y {
					out = append(out, fmt.Sprint(g.Family, " ", a.Topology.Nodes[x].Name, "->", a.Topology.Nodes[y].Name))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
