package bgp

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestFilterRuleMatch(t *testing.T) {
	p := netip.MustParsePrefix
	cases := []struct {
		rule FilterRule
		net  string
		want bool
	}{
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In}, "10.1.2.0/26", true},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In}, "10.0.0.0/8", true},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In}, "10.0.0.0/7", false},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In}, "11.0.0.0/26", false},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: NotIn}, "11.0.0.0/26", true},
		{FilterRule{CIDR: p("10.1.2.0/26"), Op: Equal}, "10.1.2.0/26", true},
		{FilterRule{CIDR: p("10.1.2.0/26"), Op: Equal}, "10.1.2.0/27", false},
		{FilterRule{CIDR: p("10.1.2.0/26"), Op: NotEqual}, "10.1.2.64/26", true},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In, PrefixLength: true, Min: 24, Max: 25}, "10.1.2.0/26", false},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: In, PrefixLength: true, Min: 24, Max: 26}, "10.1.2.0/26", true},
		{FilterRule{CIDR: p("10.0.0.0/8"), Op: NotIn, PrefixLength: true, Min: 24, Max: 25}, "10.1.2.0/26", true},
		{FilterRule{CIDR: p("fd00::/48"), Op: In}, "fd00:0:0:1::/64", true},
		{FilterRule{CIDR: p("fd00::/48"), Op: In}, "10.0.0.0/26", false},
		{FilterRule{CIDR: p("192.168.0.0/16"), Op: Equal, PrefixLength: true, Min: 16, Max: 32}, "192.168.1.0/26", false},
		{FilterRule{CIDR: p("192.168.0.0/16"), Op: NotEqual, PrefixLength: true, Min: 16, Max: 32}, "10.1.0.0/26", true},
	}
	for _, c := range cases {
		if got := c.rule.cidrMatch(p(c.net)); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.rule.String(), c.net, got, c.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{{"*", "", true}, {"eth*", "eth0", true}, {"eth*", "", false}, {"*.calico", "vxlan.calico", true}, {"e?h0", "eth0", true}, {"eth0", "eth1", false}} {
		if got := globMatch(c.pat, c.s); got != c.want {
			t.Errorf("%q ~ %q: %v, want %v", c.s, c.pat, got, c.want)
		}
	}
}

// TestDecide: the first rule that matches decides; RemotePeers matches learnt routes only; a
// prefix set compared with = matches nothing.
func TestDecide(t *testing.T) {
	topo := &Topology{Pools: []Pool{{Name: "p", CIDR: netip.MustParsePrefix("10.0.0.0/16"), BlockSize: 26, Exported: true, ViaBGP: true}}}
	rg := newRouteGroups(topo)
	g := rg.at(rg.group(netip.MustParsePrefix("10.0.1.0/26"), true, 0))
	noTransit := []FilterRule{{RemotePeers: true}}
	if d, _ := decide(noTransit, g, true); d != pass {
		t.Errorf("no-transit on the node's own block: %v, want pass", d)
	}
	if d, i := decide(noTransit, g, false); d != reject || i != 0 {
		t.Errorf("no-transit on a learnt route: %v rule %d, want reject rule 0", d, i)
	}
	rules := []FilterRule{{Accept: true, CIDR: netip.MustParsePrefix("10.9.0.0/16"), Op: In}, {CIDR: netip.MustParsePrefix("10.0.0.0/16"), Op: In}, {Accept: true}}
	if d, i := decide(rules, g, true); d != reject || i != 1 {
		t.Errorf("first matching rule: %v rule %d, want reject rule 1", d, i)
	}
	never := []FilterRule{{Accept: true, CIDR: netip.MustParsePrefix("10.0.0.0/16"), Op: Equal, PrefixLength: true, Min: 16, Max: 32}}
	if d, _ := decide(never, g, true); d != pass {
		t.Errorf("Equal with prefixLength: %v, want pass (BIRD's = on a prefix set is never true)", d)
	}
}

// groupKey identifies a route group across analyses of one topology.
func groupKey(g *RouteGroup) string {
	return fmt.Sprintf("%s|%d|%v|%v", g.Family, g.Pool, g.Confirmed, g.matches)
}

// referenceMissing is the plain definition the propagation must agree with, routes and
// filters included: on the per-node analysis, every path of every route a node originates is
// explored with its whole CLUSTER_LIST and AS_PATH, each hop through the sender's export and
// the receiver's import filter (exponential; small topologies only). It returns
// "from->to|group" for every route a node does not learn, in one family.
func referenceMissing(a *Analysis, f Family) []string {
	t := a.Topology
	type sp struct {
		name  string
		as    uint32
		cid   string
		class int // -1: external
		ext   int
	}
	var sps []sp
	idx := map[int]int{} // class → speaker
	for c := range a.Classes {
		if !a.Classes[c].has[f] {
			continue
		}
		idx[c] = len(sps)
		sps = append(sps, sp{a.Topology.Nodes[a.Classes[c].Members[0]].Name, a.Classes[c].AS, a.Classes[c].ClusterID, c, -1})
	}
	adj := make([][]int, len(sps))
	for c, u := range idx {
		for d, v := range idx {
			if c != d && a.Session(f, c, d) {
				adj[u] = append(adj[u], v)
			}
		}
	}
	for x, e := range a.externals {
		if e.f != f {
			continue
		}
		v := len(sps)
		sps = append(sps, sp{"external " + e.ip, e.as, "external/" + e.ip, -1, x})
		adj = append(adj, nil)
		for c, u := range idx {
			if extClaimOf(a, c, x) != noClaim {
				adj[u] = append(adj[u], v)
				adj[v] = append(adj[v], u)
			}
		}
	}
	// crosses: a route of group g goes from u to v (local: u originated it).
	crosses := func(u, v int, g *RouteGroup, local bool) bool {
		su, sv := sps[u], sps[v]
		switch {
		case su.class < 0:
			return passes(t, nil, t.filters(int(extClaimOf(a, sv.class, su.ext))), g, local, true)
		case sv.class < 0:
			return passes(t, t.filters(int(extClaimOf(a, su.class, sv.ext))), nil, g, local, false)
		}
		return passes(t, t.filters(int(a.claimOf(f, su.class, sv.class))), t.filters(int(a.claimOf(f, sv.class, su.class))), g, local, false)
	}
	client := func(u, v int) bool { // u marks v as rr client
		return sps[u].cid != "" && sps[u].as == sps[v].as && sps[u].cid != sps[v].cid
	}
	type route struct {
		at, from int // from: -1 own / eBGP-learned
		cl, path string
	}
	var missing []string
	for origin := range sps {
		if sps[origin].class < 0 {
			continue
		}
		for _, grp := range a.Classes[sps[origin].class].routes[f] {
			g := a.groups.at(grp)
			learned := map[int]bool{}
			seen := map[route]bool{}
			stack := []route{{at: origin, from: -1}}
			for len(stack) > 0 {
				r := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				u := r.at
				for _, v := range adj[u] {
					if v == origin || v == r.from || !crosses(u, v, g, u == origin) {
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
				if v != origin && !learned[v] && sps[v].class >= 0 {
					missing = append(missing, sps[origin].name+"->"+sps[v].name+"|"+groupKey(g))
				}
			}
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

// analysisMissing lists what a.Missing says in referenceMissing's form.
func analysisMissing(a *Analysis, f Family) []string {
	var out []string
	for k := range len(a.Classes) * len(a.Classes) {
		for _, grp := range a.Missing(f, k/len(a.Classes), k%len(a.Classes)) {
			for _, x := range a.Classes[k/len(a.Classes)].Members {
				for _, y := range a.Classes[k%len(a.Classes)].Members {
					if x != y {
						out = append(out, a.Topology.Nodes[x].Name+"->"+a.Topology.Nodes[y].Name+"|"+groupKey(a.groups.at(grp)))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// randomRouted adds pools, blocks, BGPFilters and passwords to a random topology.
func randomRouted(t testing.TB, rng *rand.Rand) Topology {
	topo := randomTopology(t, rng)
	p := netip.MustParsePrefix
	pools := []Pool{
		{Name: "ipip", CIDR: p("10.10.0.0/16"), BlockSize: 26, Exported: true, ViaBGP: true, Allocates: true},
		{Name: "vxlan", CIDR: p("10.20.0.0/16"), BlockSize: 26, Exported: true, Allocates: true},
		{Name: "noexport", CIDR: p("10.30.0.0/16"), BlockSize: 26, ViaBGP: true, Allocates: true},
		{Name: "manual", CIDR: p("10.40.0.0/16"), BlockSize: 24, Exported: true, ViaBGP: true},
	}
	for _, pl := range pools {
		if rng.Intn(2) == 0 {
			if rng.Intn(3) == 0 {
				pl.NodeSelector = sel(t, []string{"has(rr)", "g == '1'", "!has(rr)"}[rng.Intn(3)])
			}
			pl.Gone = rng.Intn(8) == 0
			topo.Pools = append(topo.Pools, pl)
		}
	}
	for i, n := range topo.Nodes {
		for b := 0; b < rng.Intn(3); b++ {
			cidr := []string{"10.10.%d.0/26", "10.10.%d.64/26", "10.20.%d.0/26", "10.30.%d.0/26", "10.40.%d.0/24", "10.99.%d.0/26", "10.10.%d.1/32"}[rng.Intn(7)]
			n.Blocks = append(n.Blocks, Block{CIDR: p(fmt.Sprintf(cidr, i)), Confirmed: rng.Intn(4) > 0})
		}
	}
	rules := []FilterRule{
		{RemotePeers: true},
		{Accept: true, RemotePeers: true},
		{CIDR: p("10.10.0.0/16"), Op: In},
		{Accept: true, CIDR: p("10.30.0.0/16"), Op: In},
		{CIDR: p("10.10.0.0/16"), Op: NotIn},
		{CIDR: p("10.10.0.0/26"), Op: Equal},
		{Accept: true, CIDR: p("10.10.0.0/16"), Op: In, PrefixLength: true, Min: 24, Max: 24},
		{CIDR: p("10.0.0.0/8"), Op: In, PrefixLength: true, Min: 26, Max: 26},
		{CIDR: p("10.10.0.0/16"), Op: Equal, PrefixLength: true, Min: 16, Max: 32},
		{Interface: "*"},
		{Accept: true, Interface: "eth*"},
		{Accept: true},
		{},
	}
	topo.Filters = map[string]*Filter{}
	for i := 0; i < rng.Intn(4); i++ {
		fl := &Filter{Name: fmt.Sprintf("f%d", i)}
		for r := 0; r < 1+rng.Intn(2); r++ {
			rule := rules[rng.Intn(len(rules))]
			if rng.Intn(3) == 0 {
				fl.Import[IPv4] = append(fl.Import[IPv4], rule)
			} else {
				fl.Export[IPv4] = append(fl.Export[IPv4], rule)
			}
		}
		topo.Filters[fl.Name] = fl
	}
	for i := range topo.Peers {
		for j := 0; j < rng.Intn(3); j++ {
			topo.Peers[i].Filters = append(topo.Peers[i].Filters, fmt.Sprintf("f%d", rng.Intn(4)))
		}
		if rng.Intn(5) == 0 {
			topo.Peers[i].Password = PasswordSource([]string{"a", "b"}[rng.Intn(2)], "k")
		}
	}
	if rng.Intn(5) == 0 {
		topo.MeshPassword = PasswordSource("a", "k")
	}
	return topo
}

// TestRoutesMatchReference checks pools, blocks, filters and passwords through every path of
// the propagation (closure, search, class reduction) against the exhaustive reference.
func TestRoutesMatchReference(t *testing.T) {
	seed := int64(20261207)
	rng := rand.New(rand.NewSource(seed))
	filtered := 0
	for iter := 0; iter < 2000; iter++ {
		topo := randomRouted(t, rng)
		a := analyze(&topo, true)
		want := referenceMissing(a, IPv4)
		if len(topo.Filters) > 0 && len(want) > 0 {
			filtered++
		}
		for name, b := range map[string]*Analysis{"per node": a, "classes": Analyze(&topo), "search": analyzeWith(&topo, searchOnly(DefaultBudget))} {
			if got := analysisMissing(b, IPv4); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d iteration %d, %s:\n got %v\nwant %v\ntopology %s", seed, iter, name, got, want, describeRouted(&topo))
			}
		}
	}
	if filtered < 200 {
		t.Errorf("only %d of 2000 topologies had filters and routes not learned", filtered)
	}
}

func describeRouted(t *Topology) string {
	var b strings.Builder
	b.WriteString(describe(t))
	for _, p := range t.Pools {
		fmt.Fprintf(&b, "  pool %s %s exported=%v viaBGP=%v allocates=%v sel=%v gone=%v\n", p.Name, p.CIDR, p.Exported, p.ViaBGP, p.Allocates, p.NodeSelector, p.Gone)
	}
	for _, n := range t.Nodes {
		if len(n.Blocks) > 0 {
			fmt.Fprintf(&b, "  blocks %s %v\n", n.Name, n.Blocks)
		}
	}
	for _, p := range t.Peers {
		fmt.Fprintf(&b, "  peer %s filters=%v password=%q\n", p.Name, p.Filters, p.Password)
	}
	for name, fl := range t.Filters {
		for _, d := range []Direction{Export, Import} {
			for _, r := range fl.rules(IPv4, d) {
				fmt.Fprintf(&b, "  filter %s %s %s\n", name, d, r.String())
			}
		}
	}
	fmt.Fprintf(&b, "  mesh password %q\n", t.MeshPassword)
	return b.String()
}

// TestOriginNeverRelearns: a session that passes learnt routes and not the sender's own
// (Accept RemotePeers, then Reject) must not carry the sender's own route even when it comes
// back to it from a reflector: BIRD drops it there (ORIGINATOR_ID). The closure cannot keep
// origins apart, so such a graph is searched.
func TestOriginNeverRelearns(t *testing.T) {
	topo := Topology{
		Nodes: []*Node{node("o", "10.0.0.1", "1.0.0.1", "side=o"), node("r", "10.0.0.2", "1.0.0.2", "side=r"), node("x", "10.0.0.3", "", "side=x")},
		Peers: []Peer{
			{Name: "o-r", NodeSelector: sel(t, "side == 'o'"), PeerSelector: sel(t, "side == 'r'")},
			{Name: "o-x", NodeSelector: sel(t, "side == 'o'"), PeerSelector: sel(t, "side == 'x'"), Filters: []string{"learnt-only"}},
		},
		Filters: map[string]*Filter{"learnt-only": {Name: "learnt-only", Export: [2][]FilterRule{IPv4: {{Accept: true, RemotePeers: true}, {}}}}},
	}
	for name, a := range map[string]*Analysis{"classes": Analyze(&topo), "search": analyzeWith(&topo, searchOnly(DefaultBudget)), "per node": analyze(&topo, true)} {
		if a.LearnsIn(IPv4, "o", "x") {
			t.Errorf("%s: x learns o's own route over a session that exports only learnt routes", name)
		}
		if !a.LearnsIn(IPv4, "r", "x") {
			t.Errorf("%s: x must learn r's route through o (learnt there)", name)
		}
	}
}

// searchOnly is b for an analysis that decides every family by the search.
func searchOnly(b Budget) Budget {
	b.searchOnly = true
	return b
}
