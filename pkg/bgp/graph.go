package bgp

import (
	"fmt"
	"slices"
	"strings"
)

// standinsPerClass is how many members stand for a class in the session graph: the first
// originates the class's routes, the others show whether the rest of the class learns them.
// Two besides the originator keep every path of the full graph (members of a class are
// interchangeable: a path through several members of one class needs at most two of them
// besides the origin), and LostIfDown leaves the last of them out to play a failed member.
const standinsPerClass = 3

// maxGraphSessions bounds the sessions between stand-ins a session graph holds: about 50 MB
// with its arcs, before any propagation. A full mesh of thousands of classes of several ASes
// (a mesh of one AS leaves the graph: buildGraph) would hold millions, gigabytes; such a
// family is reported undecided instead. A variable for tests.
var maxGraphSessions = 1 << 20

// sessionGraph is a family's sessions between stand-ins, built once per analysis and read
// (never written) by every propagation over it, what-ifs included.
type sessionGraph struct {
	f        Family
	speakers []speaker
	arcs     [][]arc
	// standins[c] are the speakers standing for class c (at most standinsPerClass; none for
	// a class without an address of the family); standins[c][0] originates its routes.
	standins [][]int
	// words is the length of a tracked colour set (0: nothing is tracked); cidMask has the
	// bits of the cluster-ID colours (the others are AS colours).
	words   int
	cidMask []uint64
	// origins are the origins of the family's routes; own[s] the origins speaker s originates;
	// viaBGP has bit o set when origin o's routes reach pods only through BGP (the gaps and
	// what-ifs count only those).
	origins []origin
	own     [][]int
	viaBGP  []uint64
	// policies are the distinct filter pairs of the arcs (arc.policy), and pass[policy][g]
	// whether a route of group g crosses (bit 0: the sender's own, bit 1: learnt).
	policies []policy
	pass     [][]uint8
	// ebgpAt[u]: speaker u has an eBGP session.
	ebgpAt []bool
	// firstHopNarrower: some session lets a group's learnt routes through and not the
	// sender's own ones, so the origin must be kept apart (the search does, the closure
	// cannot). filtered: some session stops some group's routes.
	firstHopNarrower, filtered bool
	// before is what the whole graph's propagation found (see learning); reached[s], the
	// origins whose routes reached speaker s (bits over origins): a what-if that leaves s out
	// changes only those.
	before  *learning
	reached [][]uint64
	// saved are the state graphs the whole graph's closure made, by pattern (closure.go).
	saved map[string]*stateGraph
	// meshed (bit c): the sessions of the node-to-node mesh between class c and the other
	// meshed classes are left out of arcs, and what they carry is added to each propagation's
	// result with policy meshPolicy (meshDeliveries); nil: the mesh's sessions are arcs. See
	// buildGraph for when.
	meshed     []uint64
	meshPolicy int32
}

type speaker struct {
	as      uint32
	cid     string // "" for a speaker that is no reflector
	cidBit  int    // tracked colour of (AS, cluster ID), -1 if untracked
	asBit   int    // tracked colour of the AS, -1 if untracked
	reflect bool
}

// arc is a session seen from one end: speaker from may advertise to speaker to.
type arc struct {
	to       int32
	policy   int32 // index into sessionGraph.policies
	ebgp     bool
	toClient bool // from marks to as rr client
	asClient bool // to marks from as rr client
}

// policy is what a route meets crossing an arc: the sender's BGPFilters and
// calico_export_to_bgp_peers (unless the sender is a router outside the cluster, whose
// policy rrguard cannot see and takes as passing everything), then the receiver's BGPFilters.
type policy struct {
	exp, imp []*Filter
	external bool
}

// policyKey identifies a policy by the peers whose filters it takes.
type policyKey struct {
	out, in  int32
	external bool
}

// filterKey identifies a policy by the filters it applies: peerings of many peers with the
// same filters (most often none) share one policy.
func (t *Topology) filterKey(k policyKey) string {
	var b strings.Builder
	for _, fl := range t.filters(int(k.out)) {
		b.WriteString(fl.Name)
		b.WriteByte(0)
	}
	b.WriteByte(1)
	for _, fl := range t.filters(int(k.in)) {
		b.WriteString(fl.Name)
		b.WriteByte(0)
	}
	if k.external {
		b.WriteByte(2)
	}
	return b.String()
}

// buildGraph lays out the stand-ins, their colours, the sessions between them and what
// crosses each. A graph of more than maxGraphSessions sessions is not laid out (an error).
func (a *Analysis) buildGraph(f Family) (*sessionGraph, error) {
	t := a.Topology
	g := &sessionGraph{f: f}
	g.standins = make([][]int, len(a.Classes))
	for c := range a.Classes {
		cc := &a.Classes[c]
		if !cc.has[f] {
			continue
		}
		for i := 0; i < min(len(cc.Members), standinsPerClass); i++ {
			g.standins[c] = append(g.standins[c], len(g.speakers))
			g.speakers = append(g.speakers, speaker{as: cc.AS, cid: cc.ClusterID, reflect: cc.ClusterID != ""})
		}
	}
	g.own = make([][]int, len(g.speakers))
	for c := range a.Classes {
		if !a.Classes[c].has[f] {
			continue
		}
		for _, grp := range a.Classes[c].routes[f] {
			g.own[g.standins[c][0]] = append(g.own[g.standins[c][0]], len(g.origins))
			g.origins = append(g.origins, origin{class: c, group: grp})
		}
	}
	g.viaBGP = make([]uint64, (len(g.origins)+63)/64)
	for o, or := range g.origins {
		if t.viaBGP(a.groups.at(or.group)) {
			set(g.viaBGP, o)
		}
	}
	// extSpeaker[x]: the speaker of external x (-1: not of this family).
	extSpeaker := make([]int, len(a.externals))
	for x, e := range a.externals {
		extSpeaker[x] = -1
		if e.f != f {
			continue
		}
		// An external iBGP peer is assumed to reflect for everyone: rrguard cannot see its
		// configuration, so it gives it the benefit of the doubt.
		extSpeaker[x] = len(g.speakers)
		g.speakers = append(g.speakers, speaker{as: e.as, cid: "external/" + e.ip, reflect: true})
		g.own = append(g.own, nil)
	}
	g.colour()

	byKey := map[policyKey]int32{}
	byFilters := map[string]int32{}
	policyOf := func(k policyKey) int32 {
		if id, ok := byKey[k]; ok {
			return id
		}
		fk := t.filterKey(k)
		if id, ok := byFilters[fk]; ok {
			byKey[k] = id
			return id
		}
		id := int32(len(g.policies))
		byKey[k], byFilters[fk] = id, id
		pol := policy{exp: t.filters(int(k.out)), imp: t.filters(int(k.in)), external: k.external}
		if k.external {
			pol.exp = nil
		}
		g.policies = append(g.policies, pol)
		return id
	}
	// The node-to-node mesh of a family with one AS (no eBGP anywhere): a meshed speaker has
	// no cluster ID, so it reflects nothing and marks no session as rr client: over a mesh
	// session it sends only its own routes, and what it learns over one it passes on over no
	// iBGP session (and there is no other kind). Every path that takes a mesh session is the
	// origin's own route going straight to a meshed peer, and nothing else follows from it:
	// meshDeliveries adds those, and the graph leaves the sessions out. A full mesh of 1,000
	// classes is 4.5 million sessions between stand-ins; a BGPPeer per node, 5,000 classes,
	// 112 million.
	if a.meshed[f] != nil && g.oneAS() {
		g.meshed = a.meshed[f]
		g.meshPolicy = policyOf(policyKey{out: noClaim, in: noClaim})
	}
	// The sessions between stand-ins, with the policies of their two directions: listed once
	// (the class pairs are many: 500,000 at 1,000 classes), counted per speaker, then laid
	// out in one array cut per speaker.
	type session struct {
		u, v   int32
		uv, vu int32
	}
	var sessions []session
	for c := range a.Classes {
		// Where the graph leaves the mesh's sessions out, those the mesh does not make
		// (session[f]) are all there is to lay out.
		var mesh []uint64
		if m := a.meshed[f]; g.meshed == nil && m != nil && has(m, c) {
			mesh = m
		}
		for d := range unionFrom(a.session[f][c], mesh, c) {
			if len(g.standins[c]) == 0 || len(g.standins[d]) == 0 || (c == d && len(g.standins[c]) < 2) {
				continue // (no policy either for sessions no stand-ins stand for)
			}
			if g.meshed != nil && has(g.meshed, c) && has(g.meshed, d) {
				continue // meshDeliveries
			}
			// The sender's end exports with the filters of its peering, the receiver's end
			// imports with those of its own.
			if len(sessions)+len(g.standins[c])*len(g.standins[d]) > maxGraphSessions {
				return nil, fmt.Errorf("more than %d BGP sessions between groups of nodes to follow (a mesh of many groups with several AS numbers?)", maxGraphSessions)
			}
			cd := policyOf(policyKey{out: a.claimOf(f, c, d), in: a.claimOf(f, d, c)})
			dc := policyOf(policyKey{out: a.claimOf(f, d, c), in: a.claimOf(f, c, d)})
			for i, u := range g.standins[c] {
				for j, v := range g.standins[d] {
					if c == d && j <= i {
						continue
					}
					sessions = append(sessions, session{int32(u), int32(v), cd, dc})
				}
			}
		}
		for _, es := range a.ext[c] {
			if sp := extSpeaker[es.x]; len(g.standins[c]) > 0 && sp >= 0 {
				out, in := policyOf(policyKey{out: es.claim, in: noClaim}), policyOf(policyKey{out: noClaim, in: es.claim, external: true})
				for _, u := range g.standins[c] {
					sessions = append(sessions, session{int32(u), int32(sp), out, in})
				}
			}
		}
	}
	degree := make([]int, len(g.speakers))
	for _, ss := range sessions {
		degree[ss.u]++
		degree[ss.v]++
	}
	all := make([]arc, 0, 2*len(sessions))
	g.arcs = make([][]arc, len(g.speakers))
	for u, n := range degree {
		g.arcs[u], all = all[:0:n], all[n:n:cap(all)]
	}
	for _, ss := range sessions {
		su, sv := &g.speakers[ss.u], &g.speakers[ss.v]
		same := su.as == sv.as
		g.arcs[ss.u] = append(g.arcs[ss.u], arc{to: ss.v, policy: ss.uv, ebgp: !same, toClient: same && marks(su, sv), asClient: same && marks(sv, su)})
		g.arcs[ss.v] = append(g.arcs[ss.v], arc{to: ss.u, policy: ss.vu, ebgp: !same, toClient: same && marks(sv, su), asClient: same && marks(su, sv)})
	}
	g.ebgpAt = make([]bool, len(g.speakers))
	for u := range g.arcs {
		g.ebgpAt[u] = slices.ContainsFunc(g.arcs[u], func(e arc) bool { return e.ebgp })
	}
	g.decidePasses(t, a.groups)
	return g, nil
}

// oneAS reports whether every speaker, routers outside the cluster included, is of one AS.
func (g *sessionGraph) oneAS() bool {
	return !slices.ContainsFunc(g.speakers, func(s speaker) bool { return s.as != g.speakers[0].as })
}

// colour gives the colours held by two or more speakers a bit each: only those are tracked.
func (g *sessionGraph) colour() {
	type cidKey struct {
		as  uint32
		cid string
	}
	cidCount, asCount := map[cidKey]int{}, map[uint32]int{}
	for i := range g.speakers {
		s := &g.speakers[i]
		if s.cid != "" {
			cidCount[cidKey{s.as, s.cid}]++
		}
		asCount[s.as]++
	}
	ebgp := len(asCount) > 1
	cidBits, asBits := map[cidKey]int{}, map[uint32]int{}
	next := 0
	for i := range g.speakers {
		s := &g.speakers[i]
		s.cidBit, s.asBit = -1, -1
		if k := (cidKey{s.as, s.cid}); s.cid != "" && cidCount[k] > 1 {
			b, ok := cidBits[k]
			if !ok {
				b = next
				next++
				cidBits[k] = b
			}
			s.cidBit = b
		}
	}
	nCID := next
	for i := range g.speakers {
		s := &g.speakers[i]
		if ebgp && asCount[s.as] > 1 {
			b, ok := asBits[s.as]
			if !ok {
				b = next
				next++
				asBits[s.as] = b
			}
			s.asBit = b
		}
	}
	g.words = (next + 63) / 64
	g.cidMask = make([]uint64, g.words)
	for b := 0; b < nCID; b++ {
		set(g.cidMask, b)
	}
}

// Bits of sessionGraph.pass.
const (
	passOwn    = 1 << 0
	passLearnt = 1 << 1
)

// decidePasses fills pass for the groups the family's origins carry.
func (g *sessionGraph) decidePasses(t *Topology, groups *routeGroups) {
	g.pass = make([][]uint8, len(g.policies))
	var used []int
	for _, o := range g.origins {
		if !slices.Contains(used, o.group) {
			used = append(used, o.group)
		}
	}
	most := slices.Max(append(slices.Clone(used), -1))
	for i := range g.policies {
		pol := &g.policies[i]
		g.pass[i] = make([]uint8, most+1)
		for _, grp := range used {
			rg := groups.at(grp)
			var bits uint8
			if pol.crosses(t, rg, true) {
				bits |= passOwn
			}
			if pol.crosses(t, rg, false) {
				bits |= passLearnt
			}
			if bits == passLearnt {
				g.firstHopNarrower = true
			}
			if bits != passOwn|passLearnt {
				g.filtered = true
			}
			g.pass[i][grp] = bits
		}
	}
}

// crosses reports whether a route of group rg crosses the policy (own: the sender's own
// block).
func (pol *policy) crosses(t *Topology, rg *RouteGroup, own bool) bool {
	if pol.external {
		return passes(t, nil, pol.imp, rg, own, true)
	}
	return passes(t, pol.exp, pol.imp, rg, own, false)
}

// marks reports whether speaker u marks its session with v as rr client: u is a reflector
// and v's cluster ID differs (same AS is checked by the caller).
func marks(u, v *speaker) bool { return u.reflect && v.cid != u.cid }

// sameGraphInputs reports whether buildGraph(f) of a would lay out b's session graph again,
// without laying it out: what buildGraph reads is the same in both (the classes' AS,
// cluster ID, family, routes and stand-ins, the sessions, the mesh, the routers outside the
// cluster, the pools and route groups) and, for every session, the filters at each end, so
// that buildGraph meets the same policies in the same order. A BGPPeer written anew that
// leaves the sessions and their filters as they were (its selector takes in a class that
// peers with the same reflectors through another BGPPeer) is this. False negatives are
// possible (filters equal but not the same objects), never false positives
// (TestSameGraphInputs).
func (a *Analysis) sameGraphInputs(b *Analysis, f Family) bool {
	ta, tb := a.Topology, b.Topology
	if ta.Mesh != tb.Mesh || ta.AS != tb.AS || len(a.Classes) != len(b.Classes) || !slices.Equal(a.meshed[f], b.meshed[f]) ||
		!slices.Equal(a.externals, b.externals) || len(ta.Pools) != len(tb.Pools) || (len(ta.Pools) > 0 && &ta.Pools[0] != &tb.Pools[0]) {
		return false
	}
	for c := range a.Classes {
		x, y := &a.Classes[c], &b.Classes[c]
		if x.has[f] != y.has[f] || x.AS != y.AS || x.ClusterID != y.ClusterID || !slices.Equal(x.routes[f], y.routes[f]) ||
			min(len(x.Members), standinsPerClass) != min(len(y.Members), standinsPerClass) ||
			!slices.Equal(a.session[f][c], b.session[f][c]) || len(a.ext[c]) != len(b.ext[c]) {
			return false
		}
	}
	// The filters each end of a session uses. The mesh's sessions (meshed, the same in both)
	// have none at either end.
	sameFilters := func(p, q int32) bool {
		return slices.Equal(ta.filters(int(p)), tb.filters(int(q)))
	}
	for c := range a.Classes {
		for d := range bitsFrom(a.session[f][c], c) {
			if !sameFilters(a.claimOf(f, c, d), b.claimOf(f, c, d)) || !sameFilters(a.claimOf(f, d, c), b.claimOf(f, d, c)) {
				return false
			}
		}
		for k, es := range a.ext[c] {
			if o := b.ext[c][k]; es.x != o.x || !sameFilters(es.claim, o.claim) {
				return false
			}
		}
	}
	return true
}

// sameAs reports whether g and o are the same session graph: the same speakers, sessions,
// origins, colours and what crosses each session. Route propagation reads nothing else of
// the analysis but its classes' sizes, which the stand-ins carry (at most standinsPerClass)
// as far as propagation cares: whether another member is there to learn.
func (g *sessionGraph) sameAs(o *sessionGraph) bool {
	return g.f == o.f && g.words == o.words && len(g.policies) == len(o.policies) && g.firstHopNarrower == o.firstHopNarrower && g.filtered == o.filtered &&
		slices.Equal(g.speakers, o.speakers) && slices.Equal(g.cidMask, o.cidMask) && slices.Equal(g.origins, o.origins) && slices.Equal(g.viaBGP, o.viaBGP) &&
		slices.EqualFunc(g.arcs, o.arcs, slices.Equal[[]arc]) && slices.EqualFunc(g.standins, o.standins, slices.Equal[[]int]) &&
		slices.EqualFunc(g.own, o.own, slices.Equal[[]int]) && slices.EqualFunc(g.pass, o.pass, slices.Equal[[]uint8]) &&
		slices.Equal(g.meshed, o.meshed) && g.meshPolicy == o.meshPolicy
}
