package bgp

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// referenceLearns is the plain definition the propagation must agree with: on the per-node
// analysis, every path a route can take is explored with its whole CLUSTER_LIST and AS_PATH
// (exponential; small topologies only). It returns "from->to" for every pair that does not
// learn, in one family.
func referenceGaps(a *Analysis, f Family) []string {
	type sp struct {
		name string
		as   uint32
		cid  string
	}
	var sps []sp
	idx := map[int]int{} // class → speaker
	for c := range a.Classes {
		if !a.Classes[c].has[f] {
			continue
		}
		idx[c] = len(sps)
		sps = append(sps, sp{a.Topology.Nodes[a.Classes[c].Members[0]].Name, a.Classes[c].AS, a.Classes[c].ClusterID})
	}
	adj := make([][]int, len(sps))
	for c, u := range idx {
		for d, v := range idx {
			if c != d && a.Session(f, c, d) {
				adj[u] = append(adj[u], v)
			}
		}
	}
	var exts []int
	for x, e := range a.externals {
		if e.f != f {
			continue
		}
		v := len(sps)
		sps = append(sps, sp{"external " + e.ip, e.as, "external/" + e.ip})
		adj = append(adj, nil)
		exts = append(exts, v)
		for c, u := range idx {
			if extClaimOf(a, c, x) != noClaim {
				adj[u] = append(adj[u], v)
				adj[v] = append(adj[v], u)
			}
		}
	}
	client := func(u, v int) bool { // u marks v as rr client
		return sps[u].cid != "" && sps[u].as == sps[v].as && sps[u].cid != sps[v].cid
	}
	type route struct {
		at, from int // from: -1 own / eBGP-learned
		cl, path string
	}
	var gaps []string
	for origin := range sps {
		if slices.Contains(exts, origin) {
			continue
		}
		learned := map[int]bool{}
		seen := map[route]bool{}
		stack := []route{{at: origin, from: -1}}
		for len(stack) > 0 {
			r := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			u := r.at
			for _, v := range adj[u] {
				if v == origin || v == r.from {
					continue
				}
				next := route{at: v, from: u}
				if sps[u].as != sps[v].as {
					path := r.path + fmt.Sprintf("|%d|", sps[u].as)
					if strings.Contains(path, fmt.Sprintf("|%d|", sps[v].as)) {
						continue
					}
					next.path = path
					next.from = u
					next.cl = ""
					if seen[next] {
						continue
					}
					seen[next] = true
					learned[v] = true
					stack = append(stack, next)
					continue
				}
				cl := r.cl
				ibgpLearned := r.from >= 0 && sps[r.from].as == sps[u].as
				if ibgpLearned {
					if !client(u, r.from) && !client(u, v) {
						continue
					}
					if client(u, v) && strings.Contains(cl, "|"+sps[u].cid+"|") {
						continue
					}
					cl += "|" + sps[u].cid + "|"
				}
				if client(v, u) && strings.Contains(cl, "|"+sps[v].cid+"|") {
					continue
				}
				next.cl, next.path = cl, r.path
				if seen[next] {
					continue
				}
				seen[next] = true
				learned[v] = true
				stack = append(stack, next)
			}
		}
		for v := range sps {
			if v != origin && !learned[v] && !slices.Contains(exts, v) {
				gaps = append(gaps, sps[origin].name+"->"+sps[v].name)
			}
		}
	}
	slices.Sort(gaps)
	return gaps
}

func familyGaps(a *Analysis, f Family) []string {
	var out []string
	for g := range a.Gaps() {
		if g.Family != f {
			continue
		}
		for _, x := range a.Classes[g.From].Members {
			for _, y := range a.Classes[g.To].Members {
				if x != y {
					out = append(out, a.Topology.Nodes[x].Name+"->"+a.Topology.Nodes[y].Name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// randomTopology builds a small cluster with cluster IDs shared and unique, several ASes,
// external peers and selector and node-scoped peers.
func randomTopology(t testing.TB, rng *rand.Rand) Topology {
	var topo Topology
	topo.Mesh = rng.Intn(4) == 0
	topo.AS = 64512
	n := 3 + rng.Intn(7)
	for i := 0; i < n; i++ {
		nd := node(fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.0.%d", i+1), "")
		if rng.Intn(2) == 0 {
			nd.ClusterID = fmt.Sprintf("1.0.0.%d", 1+rng.Intn(3))
			nd.Labels["rr"] = "true"
		}
		nd.Labels["g"] = fmt.Sprint(rng.Intn(3))
		if rng.Intn(5) == 0 {
			nd.AS = uint32(65001 + rng.Intn(2))
		}
		topo.Nodes = append(topo.Nodes, nd)
	}
	exprs := []string{"has(rr)", "!has(rr)", "g == '0'", "g == '1'", "g != '2'", "all()"}
	for p := 0; p < 1+rng.Intn(5); p++ {
		peer := Peer{Name: fmt.Sprintf("p%d", p), ReverseManual: rng.Intn(6) == 0}
		switch rng.Intn(6) {
		case 0:
			peer.Node = fmt.Sprintf("n%d", rng.Intn(n))
			peer.PeerSelector = sel(t, exprs[rng.Intn(len(exprs))])
		case 1:
			peer.PeerIP = "10.0.0.254"
			peer.AS = []uint32{0, 65000, 65001}[rng.Intn(3)]
			if rng.Intn(2) == 0 {
				peer.NodeSelector = sel(t, exprs[rng.Intn(len(exprs))])
			}
		default:
			peer.NodeSelector = sel(t, exprs[rng.Intn(len(exprs))])
			peer.PeerSelector = sel(t, exprs[rng.Intn(len(exprs))])
		}
		topo.Peers = append(topo.Peers, peer)
	}
	return topo
}

// TestPropagationMatchesReference checks the bounded search against the plain exhaustive
// definition, node by node, on random small clusters.
func TestPropagationMatchesReference(t *testing.T) {
	seed := int64(20261202)
	rng := rand.New(rand.NewSource(seed))
	for iter := 0; iter < 1500; iter++ {
		topo := randomTopology(t, rng)
		a := analyze(&topo, true)
		c := Analyze(&topo)
		searched := analyzeWith(&topo, searchOnly(DefaultBudget))
		for _, f := range families {
			want := referenceGaps(a, f)
			if got := familyGaps(searched, f); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d iteration %d %s: search %v\nreference %v\ntopology %s", seed, iter, f, got, want, describe(&topo))
			}
			if got := familyGaps(a, f); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d iteration %d %s: propagation %v\nreference %v\ntopology %s", seed, iter, f, got, want, describe(&topo))
			}
			if got := familyGaps(c, f); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d iteration %d %s: classes %v\nreference %v\ntopology %s", seed, iter, f, got, want, describe(&topo))
			}
		}
	}
}

func describe(t *Topology) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh=%v as=%d\n", t.Mesh, t.AS)
	for _, n := range t.Nodes {
		fmt.Fprintf(&b, "  node %s %s cid=%q as=%d labels=%v\n", n.Name, n.IPv4, n.ClusterID, n.AS, n.Labels)
	}
	for _, p := range t.Peers {
		fmt.Fprintf(&b, "  peer %s node=%q nodeSel=%v peerIP=%q peerSel=%v as=%d manual=%v\n", p.Name, p.Node, p.NodeSelector, p.PeerIP, p.PeerSelector, p.AS, p.ReverseManual)
	}
	return b.String()
}

// distinctIDs is the layout clusterIDPolicy: unique leads to: n reflectors with distinct
// cluster IDs peered with one another, and clients in groups, each group peered with two
// neighbouring reflectors (reflector i serves groups i-1 and i); mesh off.
func distinctIDs(t testing.TB, reflectors, clients int) Topology {
	topo := Topology{AS: 64512}
	for i := 0; i < reflectors; i++ {
		nd := node(fmt.Sprintf("rr%04d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), fmt.Sprintf("1.0.%d.%d", i/250, i%250+1), "route-reflector=true")
		nd.Labels[fmt.Sprintf("serves-%d", i)] = "true"
		nd.Labels[fmt.Sprintf("serves-%d", (i+reflectors-1)%reflectors)] = "true"
		topo.Nodes = append(topo.Nodes, nd)
	}
	for i := 0; i < clients; i++ {
		g := i % reflectors
		topo.Nodes = append(topo.Nodes, node(fmt.Sprintf("c%05d", i), fmt.Sprintf("10.2.%d.%d", i/250, i%250+1), "", fmt.Sprintf("group=%d", g)))
	}
	topo.Peers = append(topo.Peers, Peer{Name: "rr-mesh", NodeSelector: sel(t, "has(route-reflector)"), PeerSelector: sel(t, "has(route-reflector)")})
	for g := 0; g < min(reflectors, clients); g++ {
		topo.Peers = append(topo.Peers, Peer{Name: fmt.Sprintf("group-%d", g), NodeSelector: sel(t, fmt.Sprintf("group == '%d'", g)), PeerSelector: sel(t, fmt.Sprintf("has(serves-%d)", g))})
	}
	return topo
}

func TestDistinctClusterIDsAtScale(t *testing.T) {
	// 300 reflectors: more distinct cluster IDs (and below, ASes) than any byte-sized index.
	topo := distinctIDs(t, 300, 600)
	a := Analyze(&topo)
	if len(a.Undecided) > 0 || a.GapCount() > 0 {
		t.Fatalf("fully peered distinct-ID reflectors: undecided %v, %d gaps", a.Undecided, a.GapCount())
	}
	// Drop the reflector mesh: clients of different reflector pairs lose each other.
	topo.Peers = topo.Peers[1:]
	a = Analyze(&topo)
	if !a.Learns("c00000", "c00300") || a.Learns("c00000", "c00002") {
		t.Errorf("without reflector peering: c00000->c00300 (same group) %v, c00000->c00002 %v", a.Learns("c00000", "c00300"), a.Learns("c00000", "c00002"))
	}
	// 300 nodes, each in an AS of its own, behind one external router: everyone learns.
	var ebgp Topology
	for i := 0; i < 300; i++ {
		nd := node(fmt.Sprintf("n%03d", i), fmt.Sprintf("10.3.%d.%d", i/250, i%250+1), "")
		nd.AS = uint32(65001 + i)
		ebgp.Nodes = append(ebgp.Nodes, nd)
	}
	ebgp.Peers = []Peer{{Name: "tor", PeerIP: "10.3.9.254", AS: 64999}}
	if a := Analyze(&ebgp); a.GapCount() > 0 || len(a.Undecided) > 0 {
		t.Errorf("300 ASes behind one router: %d gaps, undecided %v", a.GapCount(), a.Undecided)
	}
}

func TestBudgetExceeded(t *testing.T) {
	topo := distinctIDs(t, 40, 40)
	a := analyzeWith(&topo, searchOnly(Budget{MaxStates: 50, MaxSteps: 1 << 20}))
	if len(a.Undecided) != 1 || a.Undecided[0].Family != IPv4 || !strings.Contains(a.Undecided[0].Reason, "more than 50 route states") {
		t.Fatalf("undecided = %+v", a.Undecided)
	}
	if a.GapCount() != 0 {
		t.Errorf("an undecided family reports no gaps, got %d", a.GapCount())
	}
	// A derived analysis keeps the budget.
	changed := topo
	changed.Mesh = true
	if b := a.WithConfig(&changed); b == nil || len(b.Undecided) != 1 || b.budget.MaxStates != 50 {
		t.Errorf("WithConfig lost the budget")
	}
}

// BenchmarkDistinctClusterIDs is the series of issue 10's table: n reflectors with distinct
// cluster IDs, fully peered, and as many clients, each on two reflectors.
func BenchmarkDistinctClusterIDs(b *testing.B) {
	for _, n := range []int{10, 12, 14, 16, 20, 40, 260} {
		b.Run(fmt.Sprintf("reflectors=%d", n), func(b *testing.B) {
			topo := distinctIDs(b, n, n)
			for b.Loop() {
				if a := Analyze(&topo); a.GapCount() > 0 || len(a.Undecided) > 0 {
					b.Fatal("unexpected gaps")
				}
			}
		})
	}
}

// BenchmarkAnalyze300x5000 is the acceptance size: 300 reflectors with distinct IDs, fully
// peered, 5,000 clients on two reflectors each.
func BenchmarkAnalyze300x5000(b *testing.B) {
	topo := distinctIDs(b, 300, 5000)
	for _, n := range topo.Nodes {
		n.Prepared = nil
	}
	for b.Loop() {
		if a := Analyze(&topo); a.GapCount() > 0 || len(a.Undecided) > 0 {
			b.Fatal("unexpected gaps")
		}
	}
}

// TestLostIfDownMatchesWithNode: the what-if of a failed member (a stand-in left out of the
// same graph) gives exactly the new gaps a fresh analysis with that node NotReady gives.
func TestLostIfDownMatchesWithNode(t *testing.T) {
	rng := rand.New(rand.NewSource(99))
	pairs := func(a *Analysis, gaps []Gap, lost string, skip func(Gap) bool) []string {
		var out []string
		for _, g := range gaps {
			if skip(g) {
				continue
			}
			for _, x := range a.Classes[g.From].Members {
				for _, y := range a.Classes[g.To].Members {
					from, to := a.Topology.Nodes[x].Name, a.Topology.Nodes[y].Name
					if x != y && from != lost && to != lost {
						out = append(out, fmt.Sprint(g.Family, " ", from, "->", to))
					}
				}
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	checked, interchangeable := 0, 0
	for iter := 0; iter < 400; iter++ {
		topo := randomTopology(t, rng)
		for _, search := range []bool{false, true} {
			a := analyzeWith(&topo, Budget{MaxStates: DefaultBudget.MaxStates, MaxSteps: DefaultBudget.MaxSteps, searchOnly: search})
			for c := range a.Classes {
				i := a.Classes[c].Members[0]
				changed := topo
				changed.Nodes = slices.Clone(topo.Nodes)
				lost := *changed.Nodes[i]
				lost.Ready = false
				changed.Nodes[i] = &lost
				without := a.WithNode(&changed, i)
				want := pairs(without, slices.Collect(without.Gaps()), lost.Name, func(g Gap) bool {
					from, to := without.Classes[g.From].Members[0], without.Classes[g.To].Members[0]
					return a.HasGap(g.Family, a.ClassOf[from], a.ClassOf[to])
				})
				gaps, ok := a.LostIfDown(c)
				if !ok {
					t.Fatalf("iteration %d: what-if of %s not checked within the budget", iter, lost.Name)
				}
				got := pairs(a, gaps, lost.Name, func(Gap) bool { return false })
				if len(a.Classes[c].Members) > 3 && len(want) > 0 {
					t.Fatalf("iteration %d: losing one of %d interchangeable nodes cuts %v", iter, len(a.Classes[c].Members), want)
				}
				checked++
				if g := a.graphs[IPv4]; g != nil && g.interchangeable(c) {
					interchangeable++
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("iteration %d (search %v), %s fails: LostIfDown %v\nWithNode %v\ntopology %s", iter, search, lost.Name, got, want, describe(&topo))
				}
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d what-ifs compared", checked)
	}
	// Reflector classes whose stand-ins are interchangeable take no what-if: enough of them
	// must be compared too.
	if interchangeable < 100 {
		t.Errorf("only %d what-ifs of interchangeable stand-ins compared", interchangeable)
	}
	t.Logf("%d what-ifs compared, %d of interchangeable stand-ins", checked, interchangeable)
}

// threePropagations analyses topo (by the search) with a budget of three times the steps one
// whole propagation of it takes: what-ifs may spend that between them.
func threePropagations(t *testing.T, topo Topology) *Analysis {
	t.Helper()
	probe := analyzeWith(&topo, searchOnly(DefaultBudget))
	whole := &propagation{a: probe, g: probe.graphs[IPv4], budget: probe.budget, excluded: -1}
	if _, err := whole.learned(-1, nil); err != nil {
		t.Fatal(err)
	}
	return analyzeWith(&topo, searchOnly(Budget{MaxStates: 1 << 20, MaxSteps: 3 * whole.search.steps}))
}

// TestWhatIfsShareABudget: the what-ifs of one analysis spend one budget between them; past
// it LostIfDown says it did not check, and a derived analysis starts with a budget of its own.
func TestWhatIfsShareABudget(t *testing.T) {
	a := threePropagations(t, distinctIDs(t, 12, 24))
	if len(a.Undecided) > 0 {
		t.Fatalf("the analysis itself must fit the budget: %v", a.Undecided)
	}
	checked, unchecked := 0, 0
	for c := range a.Classes {
		if a.Classes[c].ClusterID == "" {
			continue
		}
		if _, ok := a.LostIfDown(c); ok {
			checked++
		} else {
			unchecked++
		}
	}
	if checked == 0 || unchecked == 0 {
		t.Fatalf("%d what-ifs checked, %d not: a shared budget of 20,000 steps should cover some and not all", checked, unchecked)
	}
	fresh := a.Within(a.Budget())
	if _, ok := fresh.LostIfDown(0); !ok && a.Classes[0].ClusterID != "" {
		t.Error("a fresh budget must check the first what-if again")
	}
}

// TestDerivedPropagationMatchesAnalyze: an analysis derived from another (a node changed, the
// BGPPeers changed, the mesh toggled) reuses its base's propagation where its session graph
// comes out the same (sessionGraph.sameAs). Either way it must find what a fresh analysis
// finds: who learns whose routes in each family, and what each reflector's failure would
// cut. Random clusters with reflectors, several ASes and external peers.
func TestDerivedPropagationMatchesAnalyze(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	exprs := []string{"has(rr)", "!has(rr)", "g == '0'", "g == '1'", "g != '2'", "all()"}
	learns := func(a *Analysis) string {
		var b strings.Builder
		for _, f := range families {
			for _, x := range a.Topology.Nodes {
				for _, y := range a.Topology.Nodes {
					if x != y && a.Class(x.Name) >= 0 && a.Class(y.Name) >= 0 && !a.LearnsIn(f, x.Name, y.Name) {
						fmt.Fprintf(&b, "%s %s->%s ", f, x.Name, y.Name)
					}
				}
			}
		}
		return b.String()
	}
	// lost: for each reflector node, the node pairs its failure would cut (LostIfDown).
	lost := func(a *Analysis) string {
		var b strings.Builder
		for _, n := range a.Topology.Nodes {
			c := a.Class(n.Name)
			if c < 0 || a.Classes[c].ClusterID == "" {
				continue
			}
			gaps, ok := a.LostIfDown(int(c))
			var pairs []string
			for _, g := range gaps {
				for _, x := range a.Classes[g.From].Members {
					for _, y := range a.Classes[g.To].Members {
						if x != y && a.Topology.Nodes[x] != n && a.Topology.Nodes[y] != n {
							pairs = append(pairs, fmt.Sprint(g.Family, " ", a.Topology.Nodes[x].Name, "->", a.Topology.Nodes[y].Name))
						}
					}
				}
			}
			slices.Sort(pairs)
			fmt.Fprintf(&b, "%s (%v): %v\n", n.Name, ok, slices.Compact(pairs))
		}
		return b.String()
	}
	reused, derived := 0, 0
	for iter := 0; iter < 3000; iter++ {
		topo := randomTopology(t, rng)
		a := Analyze(&topo)
		changed := topo
		var got *Analysis
		switch rng.Intn(3) {
		case 0:
			changed.Nodes = slices.Clone(topo.Nodes)
			i := rng.Intn(len(topo.Nodes))
			n := *topo.Nodes[i]
			n.Labels = map[string]string{"kubernetes.io/hostname": n.Name, "g": fmt.Sprint(rng.Intn(3))}
			if rng.Intn(3) == 0 {
				n.ClusterID = []string{"", "1.0.0.1", "1.0.0.2"}[rng.Intn(3)]
			}
			if n.ClusterID != "" {
				n.Labels["rr"] = "true"
			}
			changed.Nodes[i] = &n
			got = a.WithNode(&changed, i)
		case 1:
			changed.Peers = slices.Clone(topo.Peers)
			p := Peer{Name: fmt.Sprintf("p%d", len(changed.Peers)), NodeSelector: sel(t, exprs[rng.Intn(len(exprs))]), PeerSelector: sel(t, exprs[rng.Intn(len(exprs))])}
			switch r := rng.Intn(3); {
			case r == 0 && len(changed.Peers) > 1:
				changed.Peers = changed.Peers[1:]
			case r == 1:
				p.Name = changed.Peers[0].Name
				changed.Peers[0] = p
			default:
				changed.Peers = append(changed.Peers, p)
			}
			got = a.WithPeers(&changed)
		default:
			changed.Mesh = !topo.Mesh
			got = a.WithConfig(&changed)
		}
		want := Analyze(&changed)
		derived++
		for _, f := range families {
			if got.graphs[f] != nil && got.graphs[f] == a.graphs[f] {
				reused++
				break
			}
		}
		if g, w := learns(got), learns(want); g != w {
			t.Fatalf("iteration %d: derived, routes not learned: %s\nfresh: %s\ntopology %s\nchanged %s", iter, g, w, describe(&topo), describe(&changed))
		}
		if g, w := lost(got), lost(want); g != w {
			t.Fatalf("iteration %d: derived, what-ifs:\n%s\nfresh:\n%s\ntopology %s\nchanged %s", iter, g, w, describe(&topo), describe(&changed))
		}
	}
	if reused < derived/10 {
		t.Errorf("only %d of %d derived analyses reused their base's propagation", reused, derived)
	}
	t.Logf("%d derived analyses, %d reused their base's propagation", derived, reused)
}

// TestSameAsTellsEveryPartApart: a session graph built again is the same; one that differs in
// any part route propagation reads is not.
func TestSameAsTellsEveryPartApart(t *testing.T) {
	topo := seed(t)
	topo.Nodes = append(topo.Nodes, node("other", "10.30.0.20", "1.0.0.2", "route-reflector=true"))
	topo.Peers = append(topo.Peers, Peer{Name: "ext", PeerIP: "192.0.2.1", AS: 65001})
	a := Analyze(&topo)
	base := a.graphs[IPv4]
	build := func() *sessionGraph {
		g, err := a.buildGraph(IPv4)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if !build().sameAs(base) {
		t.Fatal("the graph built again is not the same")
	}
	changes := map[string]func(g *sessionGraph){
		"an arc's end":          func(g *sessionGraph) { g.arcs[0][0].to = (g.arcs[0][0].to + 1) % int32(len(g.speakers)) },
		"an arc's client mark":  func(g *sessionGraph) { g.arcs[0][0].toClient = !g.arcs[0][0].toClient },
		"an arc's policy":       func(g *sessionGraph) { g.arcs[0][0].policy++ },
		"a stand-in":            func(g *sessionGraph) { g.standins[0][0]++ },
		"an origin's group":     func(g *sessionGraph) { g.origins[0].group++ },
		"what goes over BGP":    func(g *sessionGraph) { g.viaBGP[0] ^= 1 },
		"what a speaker starts": func(g *sessionGraph) { g.own[0] = append(g.own[0], 0) },
		"what crosses":          func(g *sessionGraph) { g.pass[0][0] ^= passOwn },
		"a speaker's cluster":   func(g *sessionGraph) { g.speakers[0].cid += "x" },
		"a colour":              func(g *sessionGraph) { g.cidMask = append(g.cidMask, 1) },
		"the first hop":         func(g *sessionGraph) { g.firstHopNarrower = !g.firstHopNarrower },
		"the family":            func(g *sessionGraph) { g.f = IPv6 },
		"the meshed classes":    func(g *sessionGraph) { g.meshed = append(slices.Clone(g.meshed), 1) },
		"the mesh's policy":     func(g *sessionGraph) { g.meshPolicy++ },
	}
	for name, change := range changes {
		g := build()
		change(g)
		if g.sameAs(base) {
			t.Errorf("%s changed: still the same graph", name)
		}
	}
}

// TestWhatIfsAnswerAlikeWhateverTheOrder: the what-ifs of many reflector classes, with a
// budget that covers some and not all, answer the same (which are checked, and what they
// find) run one after the other or in parallel, every time; and those checked are a prefix
// of the classes asked, each answer as LostIfDown alone would give it with the whole budget.
func TestWhatIfsAnswerAlikeWhateverTheOrder(t *testing.T) {
	base := threePropagations(t, distinctIDs(t, 12, 24))
	var classes []int
	for c := range base.Classes {
		if base.Classes[c].ClusterID != "" {
			classes = append(classes, c)
		}
	}
	answer := func(serial int64) string {
		a := base.Within(base.Budget())
		gaps, checked := a.LostIfDownEach(classes, serial)
		return fmt.Sprint(checked, gaps)
	}
	want := answer(1 << 62)
	if !strings.Contains(want, "true") || !strings.Contains(want, "false") {
		t.Fatalf("the budget should cover some what-ifs and not all: %s", want)
	}
	for i := range 20 {
		if got := answer(0); got != want {
			t.Fatalf("run %d in parallel:\n%s\none after the other:\n%s", i, got, want)
		}
	}
	a := base.Within(base.Budget())
	gaps, checked := a.LostIfDownEach(classes, 0)
	for k, c := range classes {
		if k > 0 && checked[k] && !checked[k-1] {
			t.Errorf("what-if %d checked after %d was not", k, k-1)
		}
		if checked[k] {
			alone, ok := base.Within(base.Budget()).LostIfDown(c)
			if !ok || fmt.Sprint(alone) != fmt.Sprint(gaps[k]) {
				t.Errorf("class %d: %v in turn, %v (checked %v) alone", c, gaps[k], alone, ok)
			}
		}
	}
}

// TestGapsAgreeWithHasGap: the gaps kept as bits answer alike however they are read —
// listed (Gaps, GapCount), asked pair by pair (HasGap), or as the route groups a pair misses
// (Missing: some of them carried over BGP exactly where there is a gap).
func TestGapsAgreeWithHasGap(t *testing.T) {
	rng := rand.New(rand.NewSource(41))
	withGaps := 0
	for iter := 0; iter < 400; iter++ {
		topo := randomTopology(t, rng)
		a := Analyze(&topo)
		listed := map[Gap]bool{}
		for g := range a.Gaps() {
			if listed[g] {
				t.Fatalf("iteration %d: gap %+v listed twice", iter, g)
			}
			listed[g] = true
		}
		if len(listed) != a.GapCount() {
			t.Fatalf("iteration %d: %d gaps listed, GapCount %d", iter, len(listed), a.GapCount())
		}
		if len(listed) > 0 {
			withGaps++
		}
		for _, f := range families {
			for x := range a.Classes {
				for y := range a.Classes {
					viaBGP := slices.ContainsFunc(a.Missing(f, x, y), a.ViaBGP)
					if gap := listed[Gap{Family: f, From: x, To: y}]; gap != a.HasGap(f, x, y) || gap != viaBGP {
						t.Fatalf("iteration %d: %s %d→%d: listed %v, HasGap %v, Missing via BGP %v", iter, f, x, y, gap, a.HasGap(f, x, y), viaBGP)
					}
				}
			}
		}
	}
	if withGaps < 40 {
		t.Fatalf("only %d of 400 topologies have gaps: the test says little", withGaps)
	}
}

// extClaimOf is the peer that gives class c its session with external x (noClaim: none).
func extClaimOf(a *Analysis, c, x int) int32 {
	for _, es := range a.ext[c] {
		if es.x == int32(x) {
			return es.claim
		}
	}
	return noClaim
}

// TestSessionGraphPastTheBudget: a session graph larger than maxGraphSessions is not laid out (the memory is the cost: a mesh of 5,000 node groups of several ASes is 12 million
// sessions); the family is reported undecided, with no gap claimed, and the same cluster is
// decided within a budget that holds it. 40 nodes of 40 ASes, meshed: 780 sessions.
func TestSessionGraphPastTheBudget(t *testing.T) {
	topo := Topology{Mesh: true, AS: 64512}
	for i := range 40 {
		n := node(fmt.Sprintf("n%02d", i), fmt.Sprintf("10.0.0.%d", i+1), "")
		n.AS = uint32(64600 + i)
		topo.Nodes = append(topo.Nodes, n)
	}
	saved := maxGraphSessions
	t.Cleanup(func() { maxGraphSessions = saved })
	maxGraphSessions = 700
	small := Analyze(&topo)
	if small.Decided(IPv4) || small.GapCount() != 0 || small.graphs[IPv4] != nil {
		t.Fatalf("780 sessions, bound 700: decided %v, %d gaps", small.Decided(IPv4), small.GapCount())
	}
	if !strings.Contains(fmt.Sprint(small.Undecided), "more than 700 BGP sessions") {
		t.Errorf("reason: %v", small.Undecided)
	}
	if gaps, checked := small.LostIfDown(0); checked && len(gaps) > 0 {
		t.Errorf("a what-if of an undecided family found gaps: %v", gaps)
	}
	maxGraphSessions = 800
	if full := Analyze(&topo); !full.Decided(IPv4) || full.GapCount() != 0 {
		t.Fatalf("780 sessions, bound 800: undecided %v, %d gaps", full.Undecided, full.GapCount())
	}
}

// TestOrAt: record's word-at-a-time path puts bit b of a chunk's set at bit off+b of a row,
// for every offset within a word and across words, and touches no other bit.
func TestOrAt(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for iter := 0; iter < 2000; iter++ {
		total := 1 + rng.Intn(300)
		n := 1 + rng.Intn(total)
		off := rng.Intn(total - n + 1)
		dst := make([]uint64, (total+63)/64)
		want := make([]bool, total)
		for b := range total {
			if rng.Intn(3) == 0 {
				set(dst, b)
				want[b] = true
			}
		}
		src := make([]uint64, (n+63)/64)
		for b := range n {
			if rng.Intn(2) == 0 {
				set(src, b)
				want[off+b] = true
			}
		}
		orAt(dst, src, off)
		for b := range total {
			if has(dst, b) != want[b] {
				t.Fatalf("iteration %d: %d bits at %d of %d: bit %d is %v, want %v", iter, n, off, total, b, has(dst, b), want[b])
			}
		}
		for b := total; b < len(dst)*64; b++ {
			if has(dst, b) {
				t.Fatalf("iteration %d: bit %d past the row's %d is set", iter, b, total)
			}
		}
	}
}
