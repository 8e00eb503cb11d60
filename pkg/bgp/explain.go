package bgp

import (
	"net/netip"
	"slices"
	"strings"
)

// What the model can say about routes for people: which filter rules drop which routes, and
// which routes each node originates (rrguard sessions, route-propagation's causes).

// Rejection is a BGPFilter rule that drops routes of a group on sessions of the model: the
// ends that apply it and the classes at the other end.
type Rejection struct {
	// Peer is the BGPPeer whose peerings carry the filter.
	Peer, Filter string
	// Rule is the index of the rule in the filter's rules of the family and direction.
	Rule int
	Text string
	Dir  Direction
	// Learnt: the rule drops routes the end learnt over BGP (else the end's own blocks).
	Learnt bool
	// Ends are the classes that apply it, Others those at the other end of their sessions.
	Ends, Others []int
}

// Rejections lists the BGPFilter rules that drop routes of group grp (family f) on the
// sessions of the model where the route would otherwise go: exports of a node's own block,
// exports of learnt routes by reflectors and over eBGP (a plain node passes none on over
// iBGP anyway), and imports.
func (a *Analysis) Rejections(f Family, grp int) []Rejection {
	t := a.Topology
	if !slices.ContainsFunc(t.Peers, func(p Peer) bool { return len(p.Filters) > 0 }) {
		return nil // no BGPFilter applies anywhere (the walk below is over every class pair)
	}
	g := a.groups.at(grp)
	var out []Rejection
	note := func(p int32, fl *Filter, rule int, d Direction, learnt bool, end, other int) {
		for i := range out {
			r := &out[i]
			if r.Peer == t.Peers[p].Name && r.Filter == fl.Name && r.Rule == rule && r.Dir == d && r.Learnt == learnt {
				if !slices.Contains(r.Ends, end) {
					r.Ends = append(r.Ends, end)
				}
				if !slices.Contains(r.Others, other) {
					r.Others = append(r.Others, other)
				}
				return
			}
		}
		out = append(out, Rejection{Peer: t.Peers[p].Name, Filter: fl.Name, Rule: rule, Text: fl.rules(f, d)[rule].String(), Dir: d, Learnt: learnt, Ends: []int{end}, Others: []int{other}})
	}
	// first runs filters as a filter chain does and notes the rule that rejects, if one does.
	first := func(p int32, d Direction, local bool, end, other int) {
		for _, fl := range t.filters(int(p)) {
			dec, i := decide(fl.rules(f, d), g, local)
			if dec == reject {
				note(p, fl, i, d, !local, end, other)
			}
			if dec != pass {
				return
			}
		}
	}
	for c := range a.Classes {
		if !a.Classes[c].has[f] {
			continue
		}
		own := slices.Contains(a.Classes[c].routes[f], grp)
		for d := range a.Classes {
			p := a.claimOf(f, c, d)
			if !a.Session(f, c, d) || p == noClaim {
				continue
			}
			if own {
				first(p, Export, true, c, d)
			}
			if a.Classes[c].ClusterID != "" || a.Classes[c].AS != a.Classes[d].AS {
				first(p, Export, false, c, d)
			}
			first(p, Import, false, c, d)
		}
	}
	return out
}

// OriginRoute is a pod route a node originates, as `rrguard sessions` lists it.
type OriginRoute struct {
	Family Family
	CIDR   netip.Prefix
	// Pool is the IPPool that covers it ("" none); Held is false for a block the node may be
	// given (a pool selects it) but does not hold yet, of which CIDR is the pool's first.
	Pool string
	Held bool
	// Assumed: no IPPool was given; Pool is Calico's default of the family.
	Assumed bool
	// Exported: the node's calico_export_to_bgp_peers accepts it (filters aside); ViaBGP:
	// BIRD routes it (not VXLAN).
	Exported, ViaBGP bool
}

// NodeRoutes lists the routes node name originates, per family (see nodeRoutes), sorted.
func (a *Analysis) NodeRoutes(name string) []OriginRoute {
	i, ok := a.byName[name]
	if !ok {
		return nil
	}
	t := a.Topology
	n := t.Nodes[i]
	pools := t.PoolList()
	var out []OriginRoute
	_, held := a.groups.blockGroups(t, n)
	add := func(cidr netip.Prefix, confirmed, isHeld bool, pool int) {
		f := IPv4
		if !cidr.Addr().Is4() {
			f = IPv6
		}
		r := OriginRoute{Family: f, CIDR: cidr, Held: isHeld, ViaBGP: pool < 0 || pools[pool].ViaBGP}
		g := RouteGroup{Family: f, Pool: pool, Example: cidr, Confirmed: confirmed}
		r.Exported = calicoExport(t, &g, true)
		if pool >= 0 {
			r.Pool, r.Assumed = pools[pool].Name, pools[pool].Assumed
		}
		out = append(out, r)
	}
	for _, b := range n.Blocks {
		f := IPv4
		if !b.CIDR.Addr().Is4() {
			f = IPv6
		}
		if b.CIDR.Bits() < b.CIDR.Addr().BitLen() && n.Address(f) != "" {
			add(b.CIDR, b.Confirmed, true, poolOf(t, b.CIDR))
		}
	}
	for j := range pools {
		p := &pools[j]
		f := IPv4
		if !p.CIDR.Addr().Is4() {
			f = IPv6
		}
		if !p.Allocates || n.Address(f) == "" || slices.Contains(held, j) || !p.selects(n.prepared()) {
			continue
		}
		pool := j
		if p.Gone {
			pool = -1
		}
		add(FirstBlock(p), true, false, pool)
	}
	slices.SortFunc(out, func(x, y OriginRoute) int {
		if x.Family != y.Family {
			return int(x.Family) - int(y.Family)
		}
		return strings.Compare(x.CIDR.String(), y.CIDR.String())
	})
	return out
}
