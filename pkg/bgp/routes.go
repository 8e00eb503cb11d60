package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rrguard/rrguard/pkg/selector"
)

// Pod routes, as calico-node's confd renders them (bird_aggr.cfg, bird_ipam.cfg and the
// export and import filters of bird.cfg/bird6.cfg in the pinned module):
//   - A node originates one route per IPAM block it holds (`protocol static`, a blackhole
//     route per block affinity; pending affinities are ignored, /32 blocks are not routes).
//   - Every session's export filter ends in calico_export_to_bgp_peers: routes of a pool with
//     disableBGPExport are rejected first; then the node's own confirmed blocks are accepted
//     (calico_aggr); then routes inside any pool are accepted; anything else is rejected. A
//     reflector passes on a client's block through the same function, so pools decide
//     reflected routes too.
//   - BGPFilters (spec.filters of the BGPPeer whose peering it is, in order) run before it:
//     in each, the first rule that matches accepts or rejects the route for good; a filter
//     with no rule that matches leaves the decision to the next one. Import filters end in
//     accept. The node-to-node mesh has no filters.
// Routes that every pool, filter and export function treat alike form a RouteGroup: they
// reach the same nodes, so the propagation carries groups, not blocks.

// Pool is an IPPool as confd and felix read it.
type Pool struct {
	Name string
	CIDR netip.Prefix
	// BlockSize is the prefix length of the pool's blocks.
	BlockSize int
	// Exported is false for disableBGPExport: calico_export_to_bgp_peers rejects its routes.
	Exported bool
	// ViaBGP: BIRD programs the routes of this pool's blocks from BGP (IPIP or no
	// encapsulation); false for VXLAN pools, whose routes felix programs itself.
	ViaBGP bool
	// Allocates: nodes NodeSelector selects can be given blocks of it at any time (not
	// disabled, automatic assignment, for workloads); a node that holds none yet is taken to
	// hold one (Node.Blocks: rrguard judges the routes a node may originate, not only today's).
	Allocates bool
	// NodeSelector selects the nodes that allocate from the pool (nil: all()).
	NodeSelector *selector.Selector
	// Gone: the pool is being deleted (the state after its DELETE): the nodes keep the blocks
	// they hold of it, which no pool covers any more.
	Gone bool
	// Assumed: no IPPool was given; this stands for Calico's default pool of its family.
	Assumed bool
}

// selects reports whether the pool gives node n blocks.
func (p *Pool) selects(l *selector.Labels) bool {
	return p.NodeSelector == nil || p.NodeSelector.Matches(l)
}

// assumedPools are the pools rrguard takes when a topology has none (manifests of the BGP
// resources alone): Calico's defaults, CALICO_IPV4POOL_CIDR 192.168.0.0/16 with /26 blocks
// and IPIP, and an IPv6 pool with /122 blocks; every node may get a block of each.
var assumedPools = []Pool{
	{Name: "default-ipv4-ippool", CIDR: netip.MustParsePrefix("192.168.0.0/16"), BlockSize: 26, Exported: true, ViaBGP: true, Allocates: true, Assumed: true},
	{Name: "default-ipv6-ippool", CIDR: netip.MustParsePrefix("fd00::/48"), BlockSize: 122, Exported: true, ViaBGP: true, Allocates: true, Assumed: true},
}

// PoolList returns the topology's pools: Pools, or when it has none the pools Calico creates
// by default (Pool.Assumed).
func (t *Topology) PoolList() []Pool {
	if len(t.Pools) == 0 {
		return assumedPools
	}
	return t.Pools
}

// Block is an IPAM block a node holds (a confirmed or pendingDeletion block affinity).
type Block struct {
	CIDR netip.Prefix
	// Confirmed: the affinity is confirmed, so calico_aggr accepts the block at its node even
	// outside any pool; a block pending deletion is exported only inside a pool.
	Confirmed bool
}

// MatchOp is a BGPFilter rule's matchOperator.
type MatchOp uint8

// The match operators (BIRD's =, !=, ~, !~).
const (
	Equal MatchOp = iota
	NotEqual
	In
	NotIn
)

var matchOpNames = [...]string{"Equal", "NotEqual", "In", "NotIn"}

func (o MatchOp) String() string { return matchOpNames[o] }

// FilterRule is one rule of a BGPFilter, as confd renders it: `if (conditions) then { accept;
// }` (or reject; without conditions the action is unconditional).
type FilterRule struct {
	Accept bool
	// CIDR is the rule's cidr (invalid: no CIDR condition), compared with Op; with
	// PrefixLength set, In and NotIn compare with the prefix set CIDR{Min,Max}.
	CIDR         netip.Prefix
	Op           MatchOp
	PrefixLength bool
	Min, Max     int
	// RemotePeers: source RemotePeers, routes learnt over BGP.
	RemotePeers bool
	// Interface is the interface pattern ("" none).
	Interface string
}

// String describes the rule as users write it: "Reject RemotePeers", "Accept In 10.0.0.0/8".
func (r *FilterRule) String() string {
	parts := []string{"Reject"}
	if r.Accept {
		parts[0] = "Accept"
	}
	if r.CIDR.IsValid() {
		c := r.CIDR.String()
		if r.PrefixLength {
			c += fmt.Sprintf(" prefixLength %d-%d", r.Min, r.Max)
		}
		parts = append(parts, r.Op.String()+" "+c)
	}
	if r.RemotePeers {
		parts = append(parts, "RemotePeers")
	}
	if r.Interface != "" {
		parts = append(parts, "interface "+strconv.Quote(r.Interface))
	}
	return strings.Join(parts, " ")
}

// Filter is a BGPFilter: its rules per family, for routes exported to and imported from the
// peers of the BGPPeers that name it.
type Filter struct {
	Name           string
	Export, Import [2][]FilterRule
}

// Direction is a filter's direction.
type Direction uint8

// The directions.
const (
	Export Direction = iota
	Import
)

func (d Direction) String() string {
	if d == Import {
		return "import"
	}
	return "export"
}

// rules returns the filter's rules of family f and direction d.
func (fl *Filter) rules(f Family, d Direction) []FilterRule {
	if d == Import {
		return fl.Import[f]
	}
	return fl.Export[f]
}

// cidrMatch evaluates a rule's CIDR condition on a route's prefix as BIRD does.
func (r *FilterRule) cidrMatch(net netip.Prefix) bool {
	c := r.CIDR
	switch {
	case r.PrefixLength && (r.Op == Equal || r.Op == NotEqual):
		// `net = [ set ]` compares a prefix with a prefix set, values BIRD 1.6 cannot compare:
		// = is never true and != always (seen on Debian's BIRD 1.6.8).
		return r.Op == NotEqual
	case r.Op == Equal || r.Op == NotEqual:
		eq := net.Masked() == c.Masked() && net.Bits() == c.Bits()
		return eq == (r.Op == Equal)
	}
	in := net.Addr().Is4() == c.Addr().Is4() && net.Bits() >= c.Bits() && c.Masked().Contains(net.Addr())
	if r.PrefixLength {
		in = net.Addr().Is4() == c.Addr().Is4() && c.Masked().Contains(net.Addr()) && net.Bits() >= r.Min && net.Bits() <= r.Max && net.Bits() >= c.Bits()
	}
	return in == (r.Op == In)
}

// ifname is the interface BIRD gives a route: none for the blackhole route of a block the
// node originates (BIRD 1.6 reads it as "": `defined(ifname)` holds and "*" matches it), the
// interface toward the next hop for a route learnt over BGP, which rrguard cannot see: it
// takes the node's uplink, named LearntIfName.
func ifname(local bool) string {
	if local {
		return ""
	}
	return LearntIfName
}

// LearntIfName is the interface name rrguard assumes for routes a node learns over BGP, for
// BGPFilter rules with an interface: BIRD resolves the BGP next hop to the interface that
// reaches it, normally the node's uplink.
var LearntIfName = "eth0"

// decision is what a filter function decides about a route.
type decision uint8

const (
	pass   decision = iota // no rule matched: the next function decides
	accept                 // accept; ends the filter (also from inside a function)
	reject                 // reject; ends the filter
)

// decide runs rules on a route of group g (local: originated by the node that runs the
// filter; learnt over BGP otherwise).
func decide(rules []FilterRule, g *RouteGroup, local bool) (decision, int) {
	for i := range rules {
		r := &rules[i]
		if r.CIDR.IsValid() && !g.match(r) {
			continue
		}
		if r.RemotePeers && local {
			continue // source ~ [ RTS_BGP ]: a static (originated) route is not
		}
		if r.Interface != "" && !globMatch(r.Interface, ifname(local)) {
			continue
		}
		if r.Accept {
			return accept, i
		}
		return reject, i
	}
	return pass, -1
}

// globMatch is BIRD's pattern match (`~` on strings): * any run, ? one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}

// RouteGroup is a set of pod routes that every pool, filter and export function treats
// alike; Example is one of them.
type RouteGroup struct {
	Family Family
	// Pool is the index in Topology.Pools of the pool that covers the routes (-1: none).
	Pool int
	// Example is a block of the group (for a block a node may get but does not hold yet, the
	// pool's first block).
	Example   netip.Prefix
	Confirmed bool
	// matches[i]: the routes match the CIDR condition of the i-th rule with one (see
	// routeGroups.conds).
	matches []bool
	conds   *[]condKey
}

// match reports whether the group's routes match the CIDR condition of rule r.
func (g *RouteGroup) match(r *FilterRule) bool {
	k := condOf(r)
	if i := slices.Index(*g.conds, k); i >= 0 && i < len(g.matches) {
		return g.matches[i]
	}
	return r.cidrMatch(g.Example)
}

// condKey identifies a CIDR condition.
type condKey struct {
	cidr   netip.Prefix
	op     MatchOp
	length bool
	lo, hi int
}

func condOf(r *FilterRule) condKey {
	return condKey{r.CIDR, r.Op, r.PrefixLength, r.Min, r.Max}
}

// routeGroups interns the route groups of an analysis: a node's routes, per family, as
// group IDs. Shared by the analyses derived from it, which may add groups concurrently: it
// only grows, IDs never change, and a group never changes once made.
type routeGroups struct {
	conds  []condKey
	mu     sync.Mutex
	groups []*RouteGroup
	keys   map[string]int
	// first is the group of each pool's first block (by pool index; Gone pools under
	// -1-index), the route of a node that may be given a block of it.
	first map[int]int
}

// at returns group id.
func (rg *routeGroups) at(id int) *RouteGroup {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.groups[id]
}

func newRouteGroups(t *Topology) *routeGroups {
	rg := &routeGroups{keys: map[string]int{}}
	for _, fl := range t.Filters {
		for _, d := range []Direction{Export, Import} {
			for _, f := range families {
				for i := range fl.rules(f, d) {
					r := &fl.rules(f, d)[i]
					if r.CIDR.IsValid() && !slices.Contains(rg.conds, condOf(r)) {
						rg.conds = append(rg.conds, condOf(r))
					}
				}
			}
		}
	}
	slices.SortFunc(rg.conds, func(x, y condKey) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
	return rg
}

// poolOf returns the index of the pool that covers a block (-1: none); a pool being deleted
// covers nothing.
func poolOf(t *Topology, b netip.Prefix) int {
	for i := range t.PoolList() {
		p := &t.PoolList()[i]
		if !p.Gone && p.CIDR.Addr().Is4() == b.Addr().Is4() && p.CIDR.Bits() <= b.Bits() && p.CIDR.Contains(b.Addr()) {
			return i
		}
	}
	return -1
}

// group returns the ID of the group of a route.
func (rg *routeGroups) group(b netip.Prefix, confirmed bool, pool int) int {
	f := IPv4
	if !b.Addr().Is4() {
		f = IPv6
	}
	kb := make([]byte, 0, 16+len(rg.conds))
	kb = strconv.AppendInt(kb, int64(f), 10)
	kb = append(kb, '|')
	kb = strconv.AppendInt(kb, int64(pool), 10)
	kb = append(kb, '|', '0'+flag(confirmed), '|')
	matches := make([]bool, len(rg.conds))
	for i := range rg.conds {
		r := FilterRule{CIDR: rg.conds[i].cidr, Op: rg.conds[i].op, PrefixLength: rg.conds[i].length, Min: rg.conds[i].lo, Max: rg.conds[i].hi}
		matches[i] = r.cidrMatch(b)
		kb = append(kb, '0'+flag(matches[i]))
	}
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if id, ok := rg.keys[string(kb)]; ok {
		return id
	}
	key := string(kb)
	id := len(rg.groups)
	rg.keys[key] = id
	rg.groups = append(rg.groups, &RouteGroup{Family: f, Pool: pool, Example: b, Confirmed: confirmed, matches: matches, conds: &rg.conds})
	return id
}

// blockGroups returns the groups of the blocks node n holds (none for a /32 or /128 block,
// which is no route, or of a family the node has no address of), with the pools they belong
// to (a pool being deleted included).
func (rg *routeGroups) blockGroups(t *Topology, n *Node) (groups []int, held []int) {
	for _, b := range n.Blocks {
		if b.CIDR.Bits() == b.CIDR.Addr().BitLen() {
			continue // bird_aggr.cfg: a /32 block is no route
		}
		f := IPv4
		if !b.CIDR.Addr().Is4() {
			f = IPv6
		}
		if n.Address(f) == "" {
			continue
		}
		pool := poolOf(t, b.CIDR)
		for i := range t.PoolList() {
			if i == pool || (t.PoolList()[i].Gone && t.PoolList()[i].CIDR.Contains(b.CIDR.Addr())) {
				held = append(held, i)
			}
		}
		groups = append(groups, rg.group(b.CIDR, b.Confirmed, pool))
	}
	return groups, held
}

// nodeRoutes returns the groups of the routes node n originates, per family (sorted, without
// repeats): its blocks, and a block of each pool that selects it and of which it holds none.
func (rg *routeGroups) nodeRoutes(t *Topology, n *Node, l *selector.Labels) [2][]int {
	var out [2][]int
	groups, held := rg.blockGroups(t, n)
	for _, g := range groups {
		f := rg.at(g).Family
		out[f] = append(out[f], g)
	}
	for i := range t.PoolList() {
		p := &t.PoolList()[i]
		f := IPv4
		if !p.CIDR.Addr().Is4() {
			f = IPv6
		}
		if !p.Allocates || n.Address(f) == "" || slices.Contains(held, i) || !p.selects(l) {
			continue
		}
		out[f] = append(out[f], rg.firstBlock(p, i))
	}
	for f := range out {
		slices.Sort(out[f])
		out[f] = slices.Compact(out[f])
	}
	return out
}

// firstBlock returns the group of the first block of pool p (index i), the route of a node
// that may be given a block of it; a Gone pool's is outside any pool.
func (rg *routeGroups) firstBlock(p *Pool, i int) int {
	k := i
	if p.Gone {
		k = -1 - i
	}
	rg.mu.Lock()
	id, ok := rg.first[k]
	rg.mu.Unlock()
	if ok {
		return id
	}
	pool := i
	if p.Gone {
		pool = -1 // what it gave stays, outside any pool
	}
	id = rg.group(FirstBlock(p), true, pool)
	rg.mu.Lock()
	if rg.first == nil {
		rg.first = map[int]int{}
	}
	rg.first[k] = id
	rg.mu.Unlock()
	return id
}

// FirstBlock is the first block of a pool: the block rrguard takes for a node that may be
// given one but holds none yet.
func FirstBlock(p *Pool) netip.Prefix {
	return netip.PrefixFrom(p.CIDR.Masked().Addr(), max(p.BlockSize, p.CIDR.Bits()))
}

// passes reports whether a route of group g crosses a session from its sending end to its
// receiving one: the sender's export filter (BGPFilters exp, then
// calico_export_to_bgp_peers; skipped for a router outside the cluster, whose export policy
// rrguard cannot see) and the receiver's import filter (BGPFilters imp, then accept). local:
// the sender originated the route.
func passes(t *Topology, exp, imp []*Filter, g *RouteGroup, local, outside bool) bool {
	if !outside && !exported(t, exp, g, local) {
		return false
	}
	for _, fl := range imp {
		switch d, _ := decide(fl.rules(g.Family, Import), g, false); d {
		case accept:
			return true
		case reject:
			return false
		}
	}
	return true
}

// exported reports whether the sender's export filter accepts a route of group g.
func exported(t *Topology, exp []*Filter, g *RouteGroup, local bool) bool {
	for _, fl := range exp {
		switch d, _ := decide(fl.rules(g.Family, Export), g, local); d {
		case accept:
			return true
		case reject:
			return false
		}
	}
	return calicoExport(t, g, local)
}

// calicoExport is calico_export_to_bgp_peers (bird_ipam.cfg) on a route of group g; local:
// the node's own block (calico_aggr).
func calicoExport(t *Topology, g *RouteGroup, local bool) bool {
	if g.Pool >= 0 && !t.PoolList()[g.Pool].Exported {
		return false // reject_disabled_pools
	}
	if local && g.Confirmed {
		return true // calico_aggr: the node's own confirmed block
	}
	return g.Pool >= 0
}

// viaBGP reports whether the routes of group g reach pods only through BGP: BIRD programs
// them (IPIP or unencapsulated pools, and blocks no pool covers), unlike VXLAN pools', which
// felix programs.
func (t *Topology) viaBGP(g *RouteGroup) bool {
	return g.Pool < 0 || t.PoolList()[g.Pool].ViaBGP
}

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
			p := a.claim[f][c][d]
			if !a.session[f][c][d] || p == noClaim {
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
