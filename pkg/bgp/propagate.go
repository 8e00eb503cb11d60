package bgp

import (
	"math/bits"
	"slices"
)

// Route propagation, as BIRD 1.6 (calico-bird's lineage, configured by calico-node with
// `add paths on`) carries pod routes over the sessions of the model.
//
// The rules, from BIRD's proto/bgp (attrs.c: bgp_import_control, bgp_update_attrs,
// bgp_cluster_list_loopy, bgp_originator_id_loopy; bgp.c) and Calico's bird.cfg template:
//   - A session is marked `rr client` (with `rr cluster id` = the node's cluster ID) on a
//     reflector toward a peer of the same AS whose cluster ID differs from its own (plain
//     nodes included). Other sessions carry no cluster ID of the reflector's.
//   - A route learned over iBGP is passed on over iBGP only when the session it came in on or
//     the session it goes out on is `rr client` (route reflection, RFC 4456); a node without a
//     cluster ID marks nothing as client, so it reflects nothing. Its own routes and routes
//     learned over eBGP go to every iBGP peer unchanged.
//   - Reflecting prepends the reflector's cluster ID to CLUSTER_LIST.
//   - CLUSTER_LIST loops are checked only on `rr client` sessions: the sender does not send a
//     route to its client when its cluster ID is in the list, and a reflector drops a route
//     from its client when its own cluster ID is in the list. A route that a reflector of the
//     same cluster ID (a non-client) sends is kept, but never passed on to clients.
//   - eBGP: every route is advertised (add paths sends every path, not only the best);
//     CLUSTER_LIST is not carried; a receiver drops a route whose AS_PATH holds its own AS.
//   - ORIGINATOR_ID: the origin drops its own route when it comes back.
//   - Every hop passes the sender's export filter and the receiver's import filter (see
//     routes.go): BGPFilters and calico_export_to_bgp_peers, which decide per route group and
//     per source (the sender's own block, or a route it learnt over BGP).
//
// With add paths every loop-free path is a route of its own, so a node learns a route iff
// some path obeying the rules reaches it. Deciding that naively means tracking the whole
// CLUSTER_LIST and AS_PATH of every path, which is exponential in the number of cluster IDs.
// Two facts keep the search polynomial in practice:
//
//  1. Only colours (cluster IDs within an AS, and ASes) held by two or more speakers need
//     tracking. A colour held by one speaker can only repeat on a path that visits that
//     speaker twice, and a walk that revisits a speaker can be cut short at its first visit,
//     where the route was at least as free to travel (see kind below): every node the walk
//     reaches, a simple path reaches too, and on a simple path such a check never fires.
//     With a unique cluster ID per reflector and one AS, nothing is tracked at all.
//  2. A route at a speaker dominates another there when it may travel at least as freely
//     (kind) with a subset of the tracked colours: only non-dominated ones are explored.
//
// Filters do not disturb either: past its first hop a route's fate on a session depends only
// on its group, so per group they only take sessions away. The first hop (the origin's own
// block) is what may differ (source RemotePeers, the own-block accept), and the origin never
// takes its route back, so the search keeps it apart (kind originated); the closure, which
// cannot keep origins apart, runs only where the first hop passes no less than later ones.
//
// Routes of up to passWidth origins (a class and one of its route groups) travel together as
// one bit set per state, so a family of k origins needs ⌈k/passWidth⌉ passes over the session
// graph. Pathological inputs can still need exponentially many non-dominated states: the
// search stops at a fixed budget of states and steps (the same on every machine) and reports
// the family as undecided instead.

// Budget bounds one family's propagation: at most MaxStates route states are kept and at
// most MaxSteps route advertisements are examined. Both are counts, not times, so the
// verdict does not depend on the machine's load.
type Budget struct {
	MaxStates int
	MaxSteps  int
	// searchOnly (tests): decide every family by the search, never the closure, so that the
	// two can be compared.
	searchOnly bool
}

// DefaultBudget is the budget of Analyze. A full analysis of 300 reflectors with distinct
// cluster IDs, fully peered, and 5,000 clients needs about 1% of it.
var DefaultBudget = Budget{MaxStates: 1 << 20, MaxSteps: 1 << 26}

// AdmissionBudget bounds what one admission decision analyses (the state after the change,
// and its what-ifs), well inside the webhook's timeout: about 2 million steps, a second or
// two on a loaded core. A larger question is answered "not checked" (a warning), never with a
// wait that fails the request.
var AdmissionBudget = Budget{MaxStates: 1 << 18, MaxSteps: 1 << 21}

// Undecided says why route propagation of a family was not decided.
type Undecided struct {
	Family Family
	Reason string
}

// kind says how a speaker holds a route, ordered by how freely it may pass it on.
type kind uint8

const (
	// fromNonClient: learned over iBGP on a session not marked rr client; a reflector passes
	// it to its clients only, a plain node to nobody over iBGP.
	fromNonClient kind = iota
	// fromClient: learned by a reflector from its client; passed to every peer.
	fromClient
	// ebgpLearnt: learned over eBGP (empty CLUSTER_LIST); passed to every peer.
	ebgpLearnt
	// originated: the speaker's own block; passed to every peer.
	originated
	kinds = 4
)

// free reports whether a route held as k goes to every peer (no reflection needed).
func (k kind) free() bool { return k >= ebgpLearnt }

// origin is one origin of routes: the members of a class, and one route group they originate.
type origin struct {
	class, group int
}

// passWidth is the number of origins one pass over the session graph carries.
const passWidth = 1024

// propagation is one run of route propagation over a family's session graph: the whole
// graph, or a what-if with one stand-in left out.
type propagation struct {
	a        *Analysis
	g        *sessionGraph
	excluded int // a stand-in that takes no part (LostIfDown), -1 for none
	budget   Budget
	search   searchState
}

func (a *Analysis) propagate(f Family) {
	b := a.base
	if b == nil || b.groups != a.groups || b.graphs[f] == nil || b.graphs[f].before == nil {
		b = nil // no propagation to take over
	}
	var g *sessionGraph
	if b != nil && a.sameGraphInputs(b, f) {
		g = b.graphs[f] // what buildGraph would lay out again
	} else {
		var err error
		if g, err = a.buildGraph(f); err != nil {
			a.Undecided = append(a.Undecided, Undecided{Family: f, Reason: err.Error()})
			return
		}
	}
	var learned learning
	if b != nil && (g == b.graphs[f] || g.sameAs(b.graphs[f])) {
		// The session graph of the analysis derived from (a node that moved between
		// classes that stay, a BGPPeer change that leaves the sessions): its propagation,
		// which is what this graph's would find, state graphs and what-ifs' inputs included.
		g = b.graphs[f]
		a.graphs[f] = g
		learned = *g.before
		if sameLearners(a, b, f) {
			// The gaps are made of the propagation, the stand-ins and, of the classes, which
			// have members of the family and more than one member: base's too.
			a.gaps[f] = b.gaps[f]
			for _, row := range b.gaps[f] {
				for _, w := range row {
					a.gapCount += bits.OnesCount64(w)
				}
			}
			return
		}
	} else {
		a.graphs[f] = g
		p := &propagation{a: a, g: g, budget: a.budget, excluded: -1}
		g.reached = make([][]uint64, len(g.speakers))
		words := (len(g.origins) + 63) / 64
		all := make([]uint64, len(g.speakers)*words)
		for s := range g.reached {
			g.reached[s] = all[s*words : (s+1)*words : (s+1)*words]
		}
		var err error
		if learned, err = p.learned(-1, nil); err != nil {
			a.Undecided = append(a.Undecided, Undecided{Family: f, Reason: err.Error()})
			return
		}
		g.before = &learned
	}
	// The gaps: per class, its origins whose routes are carried over BGP, against every
	// class with members that do not learn them. One bit per class pair: no allocation per
	// pair (Missing reads g.before again for the route groups). Walked per learning class,
	// a word of origins at a time: most learn everything.
	rows := make([][]uint64, len(a.Classes))
	words := (len(a.Classes) + 63) / 64
	for _, y := range a.classesWith(f) {
		row := learned.row(y)
		for w, v := range g.viaBGP {
			for m := v &^ row[w]; m != 0; m &= m - 1 {
				x := g.origins[w<<6|bits.TrailingZeros64(m)].class
				if a.others(x, y) == 0 || (rows[x] != nil && has(rows[x], y)) {
					continue
				}
				if rows[x] == nil {
					rows[x] = make([]uint64, words)
				}
				set(rows[x], y)
				a.gapCount++
			}
		}
	}
	a.gaps[f] = rows
}

// sameLearners reports whether a's and b's classes are, for family f's gaps, the same: as
// many, each with members of f or not as in the other, and one member or more than one.
func sameLearners(a, b *Analysis, f Family) bool {
	return len(a.Classes) == len(b.Classes) && slices.EqualFunc(a.Classes, b.Classes, func(x, y Class) bool {
		return x.has[f] == y.has[f] && (len(x.Members) == 1) == (len(y.Members) == 1)
	})
}

// others is how many members of class y are not a given member of class x: the members of
// y that may learn x's routes from it.
func (a *Analysis) others(x, y int) int {
	if x == y {
		return len(a.Classes[y].Members) - 1
	}
	return len(a.Classes[y].Members)
}

// learning says which classes learn which origins' routes: bit o of row d is set when the
// other members of class d learn the routes of origin o (an index into the graph's origins).
// Rows per class, bits over origins: a propagation writes a class's row as it reads what the
// class's stand-ins hold, and with a BGPPeer per node (thousands of classes and origins) a
// bool per pair, written origin by origin, was most of a decision.
type learning struct {
	words int // per row
	bits  []uint64
}

func newLearning(origins, classes int) learning {
	w := (origins + 63) / 64
	return learning{words: w, bits: make([]uint64, w*classes)}
}

// row is class d's row: bit o set when d learns origin o.
func (l learning) row(d int) []uint64 { return l.bits[d*l.words : (d+1)*l.words : (d+1)*l.words] }

// has reports whether the other members of class d learn the routes of origin o.
func (l learning) has(o, d int) bool { return has(l.row(d), o) }

// learned runs the passes of every origin and returns which classes learn which (see
// learning). failed is the class whose last stand-in is excluded (-1: none); a class left
// without members originates nothing.
//
// only, when not nil, has the bits of the origins whose routes may change (the others keep
// g.before's).
func (p *propagation) learned(failed int, only []uint64) (learning, error) {
	a, g := p.a, p.g
	learned := newLearning(len(g.origins), len(a.Classes))
	live, liveBits := []int(nil), make([]uint64, learned.words)
	var kept []uint64 // the origins that keep g.before's
	if only != nil {
		kept = make([]uint64, learned.words)
	}
	for o := range g.origins {
		if failed >= 0 && g.origins[o].class == failed && len(a.Classes[failed].Members) == 1 {
			continue
		}
		if only != nil && !has(only, o) {
			set(kept, o)
			continue
		}
		live = append(live, o)
		set(liveBits, o)
	}
	if kept != nil {
		for d := range a.Classes {
			row, was := learned.row(d), g.before.row(d)
			for w := range row {
				row[w] = was[w] & kept[w]
			}
		}
	}
	if !g.firstHopNarrower && !p.budget.searchOnly && len(live) > 0 {
		// One state graph for every origin; past its budget, the search below decides.
		if p.closure(live, learned) {
			p.meshDeliveries(live, learned)
			return learned, nil
		}
		for d := range a.Classes {
			row := learned.row(d)
			for w := range row {
				row[w] &^= liveBits[w]
			}
		}
	}
	for start := 0; start < len(live); start += passWidth {
		if err := p.run(live[start:min(start+passWidth, len(live))], learned); err != nil {
			return learning{}, err
		}
	}
	p.meshDeliveries(live, learned)
	return learned, nil
}

// meshDeliveries adds what the sessions of the node-to-node mesh carry where the graph
// leaves them out (sessionGraph.meshed): the origin's own routes, straight to every other
// stand-in of a meshed class, as the mesh's policy lets them out of the origin's block.
func (p *propagation) meshDeliveries(live []int, learned learning) {
	g := p.g
	if g.meshed == nil {
		return
	}
	to := slices.Collect(bitsFrom(g.meshed, 0))
	for _, o := range live {
		or := g.origins[o]
		if !has(g.meshed, or.class) || g.pass[g.meshPolicy][or.group]&passOwn == 0 {
			continue
		}
		from := g.standins[or.class][0]
		for _, d := range to {
			// A stand-in of d other than the origin's and than the one left out learns it.
			if slices.ContainsFunc(g.standins[d], func(v int) bool { return v != from && v != p.excluded }) {
				set(learned.row(d), o)
			}
		}
	}
}

// record marks what stand-in i of class c (speaker s) holds (got, a bit set over chunk,
// which it may clear) as learned; the whole graph's propagation also notes which origins
// reach each speaker. chunk is in origin order; where it is a run of consecutive origins (a
// propagation of every origin, with a BGPPeer per node thousands) got is or-ed in a word at a
// time.
func (p *propagation) record(chunk []int, c, i, s int, got []uint64, learned learning) {
	g, row := p.g, learned.row(c)
	if i == 0 {
		// The first stand-in originates the class's routes: they are not learnt.
		for _, o := range g.own[s] {
			if bit, ok := slices.BinarySearch(chunk, o); ok {
				got[bit>>6] &^= 1 << (bit & 63)
			}
		}
	}
	if chunk[len(chunk)-1]-chunk[0] == len(chunk)-1 {
		orAt(row, got, chunk[0])
		if p.excluded < 0 {
			orAt(g.reached[s], got, chunk[0])
		}
		return
	}
	for w, v := range got {
		for ; v != 0; v &= v - 1 {
			o := chunk[w<<6|bits.TrailingZeros64(v)]
			set(row, o)
			if p.excluded < 0 {
				set(g.reached[s], o)
			}
		}
	}
}

// orAt ors the bits of src into dst from bit off on (dst's bit off+b is src's bit b); src's
// bits that would land past dst's end must be clear.
func orAt(dst, src []uint64, off int) {
	w, sh := off>>6, uint(off&63)
	for k, v := range src {
		if v == 0 {
			continue
		}
		dst[w+k] |= v << sh
		if sh != 0 && w+k+1 < len(dst) {
			dst[w+k+1] |= v >> (64 - sh)
		}
	}
}

// classesWith lists the classes whose members have an address of family f.
func (a *Analysis) classesWith(f Family) []int {
	var out []int
	for c := range a.Classes {
		if a.Classes[c].has[f] {
			out = append(out, c)
		}
	}
	return out
}

func or(dst, src []uint64) {
	for w := range dst {
		dst[w] |= src[w]
	}
}

func has(set []uint64, b int) bool { return set[b>>6]&(1<<(b&63)) != 0 }

func set(words []uint64, b int) { words[b>>6] |= 1 << (b & 63) }
