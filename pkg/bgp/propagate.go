package bgp

import (
	"fmt"
	"math/bits"
	"slices"
)

// Route propagation, as BIRD 1.6 (calico-bird's lineage, configured by calico-node with
// `add paths on`) carries pod routes over the sessions of the model.
//
// The rules, from BIRD's proto/bgp (attrs.c: bgp_import_control, bgp_update_attrs,
// bgp_cluster_list_loopy; bgp.c) and Calico's bird.cfg template:
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
// Routes of up to passWidth origins travel together as one bit set per state, so a
// cluster of k classes needs ⌈k/passWidth⌉ passes over the session graph. Pathological inputs can still need
// exponentially many non-dominated states: the search stops at a fixed budget of states
// and steps (the same on every machine) and reports the family as undecided instead.
//
// The graph is reduced: every class is stood for by up to three members (one originates
// the class's route, the others show whether the rest of the class learns it; two stand-ins
// keep every path of the full graph, since members of a class are interchangeable), every
// external peer by itself.

// Budget bounds one family's propagation: at most MaxStates route states are kept and at
// most MaxSteps route advertisements are examined. Both are counts, not times, so the
// verdict does not depend on the machine's load.
type Budget struct {
	MaxStates int
	MaxSteps  int
}

// DefaultBudget is the budget of Analyze. A full analysis of 300 reflectors with distinct
// cluster IDs, fully peered, and 5,000 clients needs about 1% of it.
var DefaultBudget = Budget{MaxStates: 1 << 20, MaxSteps: 1 << 26}

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
	// own: originated here or learned over eBGP (empty CLUSTER_LIST); passed to every peer.
	own
)

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
	ebgp     bool
	toClient bool // from marks to as rr client
	asClient bool // to marks from as rr client
}

type state struct {
	speaker int32
	kind    kind
	queued  bool
	set     int32 // offset of the tracked colour set in propagation.sets
	got     int32 // offset of the origins it holds in propagation.routes
	pending int32 // offset of the origins it has yet to pass on
}

type propagation struct {
	a        *Analysis
	excluded int      // a stand-in that takes no part (LostIfDown), -1 for none
	before   [][]bool // what propagate found: learned[o][d]
	f        Family
	budget   Budget
	speakers []speaker
	arcs     [][]arc
	standins [][]int // class → its stand-ins (the first originates)
	words    int     // words of a colour set
	cidMask  []uint64
	sets     []uint64
	states   []state
	at       [][]int32 // speaker → its states
	queue    []int32
	origin   []int // speaker → the origin (bit of the pass) it must not take back, -1
	scratch  []uint64
	ow       int      // words of an origin set
	routes   []uint64 // origin sets of the states
	offer    []uint64 // the origins being passed on
	arriving []uint64 // arrive's working copy
	steps    int
}

// closure decides a pass when no colour is tracked: a route's journey then depends only on
// (speaker, kind), a fixed graph whatever the origin, so the origins reaching each strongly
// connected component of that graph are pushed along its condensation in topological order.
// Linear in the graph's size; what the search would find (tests compare the two).
func (p *propagation) closure(chunk []int, learned [][]bool) {
	const kinds = 3
	n := len(p.speakers) * kinds
	// The state graph in compressed rows: the successors of state x are
	// edges[offs[x]:offs[x+1]].
	offs := make([]int32, n+1)
	edges := make([]int32, 0, 4*n)
	for x := 0; x < n; x++ {
		offs[x] = int32(len(edges))
		u, k := x/kinds, kind(x%kinds)
		if u == p.excluded {
			continue
		}
		su := &p.speakers[u]
		for _, e := range p.arcs[u] {
			if int(e.to) == p.excluded {
				continue
			}
			switch {
			case e.ebgp:
				edges = append(edges, e.to*kinds+int32(own))
				continue
			case k == own:
			case !su.reflect || (k == fromNonClient && !e.toClient):
				continue
			}
			nk := fromNonClient
			if e.asClient {
				nk = fromClient
			}
			edges = append(edges, e.to*kinds+int32(nk))
		}
	}
	offs[n] = int32(len(edges))
	// Tarjan's algorithm, iterative; components come out in reverse topological order.
	index, low, comp := make([]int32, n), make([]int32, n), make([]int32, n)
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	var stack, order []int32
	onStack := make([]bool, n)
	next, ncomp := int32(0), int32(0)
	type frame struct{ x, i int32 } // state, next successor to look at
	var frames []frame
	push := func(x int32) {
		index[x], low[x] = next, next
		next++
		stack = append(stack, x)
		onStack[x] = true
		frames = append(frames, frame{x, offs[x]})
	}
	for _, c := range chunk {
		start := int32(p.standins[c][0]*kinds + int(own))
		if index[start] >= 0 {
			continue
		}
		push(start)
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			if f.i < offs[f.x+1] {
				y := edges[f.i]
				f.i++
				if index[y] < 0 {
					push(y)
				} else if onStack[y] {
					low[f.x] = min(low[f.x], index[y])
				}
				continue
			}
			x := f.x
			frames = frames[:len(frames)-1]
			if len(frames) > 0 {
				parent := frames[len(frames)-1].x
				low[parent] = min(low[parent], low[x])
			}
			if low[x] == index[x] {
				for {
					y := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[y] = false
					comp[y] = ncomp
					order = append(order, y)
					if y == x {
						break
					}
				}
				ncomp++
			}
		}
	}
	ow := (len(chunk) + 63) / 64
	bitsOfComp := make([]uint64, int(ncomp)*ow)
	at := func(c int32) []uint64 { return bitsOfComp[int(c)*ow : int(c+1)*ow] }
	for bit, c := range chunk {
		x := p.standins[c][0]*kinds + int(own)
		at(comp[x])[bit>>6] |= 1 << (bit & 63)
	}
	// order lists states by component, sinks first: walk it backwards (sources first).
	// Each pair of components is joined once, however many edges run between them.
	joined := make([]int32, ncomp)
	for i := range joined {
		joined[i] = -1
	}
	for i := len(order) - 1; i >= 0; i-- {
		x := order[i]
		cx := comp[x]
		from := at(cx)
		for _, y := range edges[offs[x]:offs[x+1]] {
			if cy := comp[y]; cy != cx && joined[cy] != cx {
				joined[cy] = cx
				or(at(cy), from)
			}
		}
	}
	got := make([]uint64, ow)
	for _, c := range p.a.classesWith(p.f) {
		for i, s := range p.standins[c] {
			if s == p.excluded {
				continue
			}
			clear(got)
			for k := 0; k < kinds; k++ {
				if cx := comp[s*kinds+k]; cx >= 0 {
					or(got, at(cx))
				}
			}
			for bit, o := range chunk {
				if has(got, bit) && (o != c || i != 0) {
					learned[o][c] = true
				}
			}
		}
	}
}

// perSpeaker is how many route states per speaker a search makes room for at its start.
const perSpeaker = 4

// passWidth is the number of origins one pass over the session graph carries.
const passWidth = 1024

func (a *Analysis) propagate(f Family) {
	p := &propagation{a: a, f: f, budget: a.budget, excluded: -1}
	p.build()
	a.props[f] = p
	learned, err := p.learned(-1)
	if err != nil {
		a.Undecided = append(a.Undecided, Undecided{Family: f, Reason: err.Error()})
		return
	}
	p.before = learned
	for _, c := range a.classesWith(f) {
		for _, d := range a.classesWith(f) {
			others := len(a.Classes[d].Members)
			if d == c {
				others--
			}
			if others > 0 && !learned[c][d] {
				g := Gap{Family: f, From: c, To: d}
				a.Gaps = append(a.Gaps, g)
				a.gapSet[g] = true
			}
		}
	}
}

// LostIfDown returns the gaps, in a's classes, that one failed member of class c would
// open: routes that reach a class's members now and would not then (for c itself, its
// remaining members). It is the what-if of a reflector's failure without a new analysis:
// the session graph stays, the failed member's stand-in is left out. Nil for a class with
// more members than stand-ins (the rest stand for it), and for a family whose what-if
// exceeds the budget.
func (a *Analysis) LostIfDown(c int) []Gap {
	n := len(a.Classes[c].Members)
	if n == 0 || n > 3 {
		return nil
	}
	var out []Gap
	for _, f := range families {
		base := a.props[f]
		if base == nil || !a.Classes[c].has[f] || !a.Decided(f) {
			continue
		}
		// A copy that shares the built graph (read only) and has state of its own.
		p := &propagation{a: a, f: f, budget: a.budget, excluded: base.standins[c][n-1],
			speakers: base.speakers, arcs: base.arcs, standins: base.standins, words: base.words, cidMask: base.cidMask,
			scratch: make([]uint64, base.words), origin: make([]int, len(base.speakers)), at: make([][]int32, len(base.speakers))}
		learned, err := p.learned(c)
		if err != nil {
			continue
		}
		classes := a.classesWith(f)
		for _, o := range classes {
			if o == c && n == 1 {
				continue
			}
			for _, d := range classes {
				others := len(a.Classes[d].Members)
				if d == o {
					others--
				}
				if d == c {
					others--
				}
				if others > 0 && !learned[o][d] && base.before[o][d] {
					out = append(out, Gap{Family: f, From: o, To: d})
				}
			}
		}
	}
	return out
}

// learned runs the passes of every origin class and returns learned[o][d]: the other members
// of class d learn the routes of class o. failed is the class whose last stand-in is
// excluded (-1: none); a class left without members originates nothing.
func (p *propagation) learned(failed int) ([][]bool, error) {
	a := p.a
	f := p.f
	classes := a.classesWith(f)
	learned := make([][]bool, len(a.Classes))
	for _, c := range classes {
		learned[c] = make([]bool, len(a.Classes))
	}
	if failed >= 0 && len(a.Classes[failed].Members) == 1 {
		classes = slices.DeleteFunc(classes, func(c int) bool { return c == failed })
	}
	for start := 0; start < len(classes); start += passWidth {
		chunk := classes[start:min(start+passWidth, len(classes))]
		if p.words == 0 && !a.search {
			p.closure(chunk, learned)
			continue
		}
		if err := p.run(chunk, learned); err != nil {
			return nil, err
		}
	}
	return learned, nil
}

// build lays out the stand-ins, their colours and the sessions between them.
func (p *propagation) build() {
	a := p.a
	p.standins = make([][]int, len(a.Classes))
	for c := range a.Classes {
		cc := &a.Classes[c]
		if !cc.has[p.f] {
			continue
		}
		for i := 0; i < min(len(cc.Members), 3); i++ {
			p.standins[c] = append(p.standins[c], len(p.speakers))
			p.speakers = append(p.speakers, speaker{as: cc.AS, cid: cc.ClusterID, reflect: cc.ClusterID != ""})
		}
	}
	firstExt := len(p.speakers)
	var extIdx []int
	for x, e := range a.externals {
		if e.f != p.f {
			continue
		}
		// An external iBGP peer is assumed to reflect for everyone: rrguard cannot see its
		// configuration, so it gives it the benefit of the doubt.
		p.speakers = append(p.speakers, speaker{as: e.as, cid: "external/" + e.ip, reflect: true})
		extIdx = append(extIdx, x)
	}
	// Colours held by two or more speakers are tracked.
	type cidKey struct {
		as  uint32
		cid string
	}
	cidCount, asCount := map[cidKey]int{}, map[uint32]int{}
	for i := range p.speakers {
		s := &p.speakers[i]
		if s.cid != "" {
			cidCount[cidKey{s.as, s.cid}]++
		}
		asCount[s.as]++
	}
	ebgp := len(asCount) > 1
	cidBits, asBits := map[cidKey]int{}, map[uint32]int{}
	next := 0
	for i := range p.speakers {
		s := &p.speakers[i]
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
	for i := range p.speakers {
		s := &p.speakers[i]
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
	p.words = (next + 63) / 64
	p.cidMask = make([]uint64, p.words)
	for b := 0; b < nCID; b++ {
		p.cidMask[b>>6] |= 1 << (b & 63)
	}
	p.scratch = make([]uint64, p.words)
	p.origin = make([]int, len(p.speakers))
	p.at = make([][]int32, len(p.speakers))

	p.arcs = make([][]arc, len(p.speakers))
	link := func(u, v int) {
		su, sv := &p.speakers[u], &p.speakers[v]
		same := su.as == sv.as
		p.arcs[u] = append(p.arcs[u], arc{to: int32(v), ebgp: !same, toClient: same && marks(su, sv), asClient: same && marks(sv, su)})
		p.arcs[v] = append(p.arcs[v], arc{to: int32(u), ebgp: !same, toClient: same && marks(sv, su), asClient: same && marks(su, sv)})
	}
	for c := range a.Classes {
		for d := c; d < len(a.Classes); d++ {
			if len(p.standins[c]) == 0 || len(p.standins[d]) == 0 || !a.session[p.f][c][d] {
				continue
			}
			for i, u := range p.standins[c] {
				for j, v := range p.standins[d] {
					if c == d && j <= i {
						continue
					}
					link(u, v)
				}
			}
		}
		for i, x := range extIdx {
			if len(p.standins[c]) > 0 && a.extSess[c][x] {
				for _, u := range p.standins[c] {
					link(u, firstExt+i)
				}
			}
		}
	}
}

// marks reports whether speaker u marks its session with v as rr client: u is a reflector
// and v's cluster ID differs (same AS is checked by the caller).
func marks(u, v *speaker) bool { return u.reflect && v.cid != u.cid }

// run propagates the routes of the classes of chunk (≤ passWidth) and records, per origin
// class, which classes' other members learn them.
func (p *propagation) run(chunk []int, learned [][]bool) error {
	p.ow = (len(chunk) + 63) / 64
	// Room for a few states per speaker up front: a small search then grows nothing.
	room := perSpeaker * len(p.speakers)
	p.sets = append(slices.Grow(p.sets[:0], (room+1)*p.words), make([]uint64, p.words)...) // offset 0: the empty set
	p.routes = slices.Grow(p.routes[:0], 2*room*p.ow)
	p.states = slices.Grow(p.states[:0], room)
	p.queue = slices.Grow(p.queue[:0], room)
	p.offer = slices.Grow(p.offer[:0], p.ow)[:p.ow]
	if len(p.at) > 0 && cap(p.at[0]) == 0 {
		at := make([]int32, room)
		for i := range p.at {
			p.at[i] = at[i*perSpeaker : i*perSpeaker : (i+1)*perSpeaker]
		}
	}
	for i := range p.at {
		p.at[i] = p.at[i][:0]
		p.origin[i] = -1
	}
	for bit, c := range chunk {
		clear(p.offer)
		p.offer[bit>>6] = 1 << (bit & 63)
		if !p.arrive(int32(p.standins[c][0]), own, 0, nil, p.offer) {
			return p.exceeded()
		}
	}
	// From now on an origin drops its own route when it comes back (ORIGINATOR_ID).
	for bit, c := range chunk {
		p.origin[p.standins[c][0]] = bit
	}
	for head := 0; head < len(p.queue); head++ {
		si := p.queue[head]
		st := &p.states[si]
		st.queued = false
		k, u, set := st.kind, st.speaker, st.set
		pend := p.routes[st.pending : int(st.pending)+p.ow]
		copy(p.offer, pend)
		clear(pend)
		su := &p.speakers[u]
		for _, e := range p.arcs[u] {
			if int(e.to) == p.excluded {
				continue
			}
			p.steps++
			if p.steps > p.budget.MaxSteps {
				return p.exceeded()
			}
			cur := p.sets[set : int(set)+p.words]
			next := p.scratch
			copy(next, cur)
			var nk kind
			if e.ebgp {
				for w := range next {
					next[w] &^= p.cidMask[w]
				}
				if su.asBit >= 0 {
					next[su.asBit>>6] |= 1 << (su.asBit & 63)
				}
				if sv := &p.speakers[e.to]; sv.asBit >= 0 && has(next, sv.asBit) {
					continue // AS_PATH loop
				}
				nk = own
			} else {
				switch k {
				case own:
				case fromClient, fromNonClient:
					if !su.reflect || (k == fromNonClient && !e.toClient) {
						continue // iBGP routes are passed on only by reflection
					}
					if e.toClient && su.cidBit >= 0 && has(cur, su.cidBit) {
						continue // CLUSTER_LIST loop, checked by the sender toward a client
					}
					if su.cidBit >= 0 {
						next[su.cidBit>>6] |= 1 << (su.cidBit & 63)
					}
				}
				nk = fromNonClient
				if e.asClient {
					nk = fromClient
					if sv := &p.speakers[e.to]; sv.cidBit >= 0 && has(next, sv.cidBit) {
						continue // CLUSTER_LIST loop, checked by a reflector on its client's routes
					}
				}
			}
			if !p.arrive(e.to, nk, -1, next, p.offer) {
				return p.exceeded()
			}
		}
	}
	got := make([]uint64, p.ow)
	for _, c := range p.a.classesWith(p.f) {
		for i, s := range p.standins[c] {
			if s == p.excluded {
				continue
			}
			clear(got)
			for _, si := range p.at[s] {
				or(got, p.routes[p.states[si].got:int(p.states[si].got)+p.ow])
			}
			for bit, o := range chunk {
				if has(got, bit) && (o != c || i != 0) {
					learned[o][c] = true
				}
			}
		}
	}
	return nil
}

func or(dst, src []uint64) {
	for w := range dst {
		dst[w] |= src[w]
	}
}

func (p *propagation) exceeded() error {
	return fmt.Errorf("route propagation needs more than %d route states or %d steps (%d states, %d steps so far, %d speakers, %d tracked colours)",
		p.budget.MaxStates, p.budget.MaxSteps, len(p.states), p.steps, len(p.speakers), bitsOf(p.cidMask))
}

func bitsOf(ws []uint64) int {
	n := 0
	for _, w := range ws {
		n += bits.OnesCount64(w)
	}
	return n
}

func has(set []uint64, b int) bool { return set[b>>6]&(1<<(b&63)) != 0 }

func subset(x, y []uint64) bool {
	for w := range x {
		if x[w]&^y[w] != 0 {
			return false
		}
	}
	return true
}

// arrive offers routes (origin bits; not kept) to speaker v as kind k with the colour set at
// offset set (or, when set < 0, the words of words). It keeps the routes no state of v
// dominates, and queues them. It returns false when the budget is exhausted.
func (p *propagation) arrive(v int32, k kind, set int32, words []uint64, offered []uint64) bool {
	routes := p.scratchRoutes(offered)
	if o := p.origin[v]; o >= 0 {
		routes[o>>6] &^= 1 << (o & 63)
	}
	if isEmpty(routes) {
		return true
	}
	if set >= 0 {
		words = p.sets[set : int(set)+p.words]
	}
	match := int32(-1)
	for _, si := range p.at[v] {
		st := &p.states[si]
		other := p.sets[st.set : int(st.set)+p.words]
		if st.kind >= k && subset(other, words) {
			if andNot(routes, p.routes[st.got:int(st.got)+p.ow]) {
				return true
			}
		}
		if st.kind == k && subset(other, words) && subset(words, other) {
			match = si
		}
	}
	if match < 0 {
		if len(p.states) >= p.budget.MaxStates {
			return false
		}
		off := int32(0)
		if p.words > 0 && bitsOf(words) > 0 {
			off = int32(len(p.sets))
			p.sets = append(p.sets, words...)
		}
		match = int32(len(p.states))
		gotOff := int32(len(p.routes))
		p.routes = append(p.routes, make([]uint64, 2*p.ow)...)
		p.states = append(p.states, state{speaker: v, kind: k, set: off, got: gotOff, pending: gotOff + int32(p.ow)})
		p.at[v] = append(p.at[v], match)
	}
	st := &p.states[match]
	or(p.routes[st.got:int(st.got)+p.ow], routes)
	or(p.routes[st.pending:int(st.pending)+p.ow], routes)
	if !st.queued {
		st.queued = true
		p.queue = append(p.queue, match)
	}
	return true
}

// scratchRoutes copies offered into a buffer arrive may change.
func (p *propagation) scratchRoutes(offered []uint64) []uint64 {
	if cap(p.arriving) < len(offered) {
		p.arriving = make([]uint64, len(offered))
	}
	p.arriving = p.arriving[:len(offered)]
	copy(p.arriving, offered)
	return p.arriving
}

// andNot removes y's bits from x and reports whether x is then empty.
func andNot(x, y []uint64) bool {
	empty := true
	for w := range x {
		x[w] &^= y[w]
		if x[w] != 0 {
			empty = false
		}
	}
	return empty
}

func isEmpty(x []uint64) bool {
	for _, w := range x {
		if w != 0 {
			return false
		}
	}
	return true
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
