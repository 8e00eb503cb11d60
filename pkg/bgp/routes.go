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

// viaBGP reports whether the routes of group g reach pods only through BGP: BIRD programs
// them (IPIP or unencapsulated pools, and blocks no pool covers), unlike VXLAN pools', which
// felix programs.
func (t *Topology) viaBGP(g *RouteGroup) bool {
	return g.Pool < 0 || t.PoolList()[g.Pool].ViaBGP
}
