package bgp

import (
	"fmt"
	"math/bits"
	"slices"
)

// The search: route states (speaker, kind, tracked colours) explored breadth first, each
// carrying the set of origins (bits of the pass) that reached it so. A state is kept only
// where no state of the same speaker dominates it (see arrive).
//
// Memory layout: a search keeps every state's sets in three flat arenas, addressed by offset
// so that growing an arena never invalidates a state:
//   - sets: the tracked colour sets, words words each; offset 0 is the empty set, shared by
//     every state without colours;
//   - routes: per state two origin sets of ow words each, at got (what it holds) and
//     got+ow (pending: what it has yet to pass on);
//   - states, at, queue: the states, each speaker's states, and the states to visit.
// A run reuses the arenas of the last one (run resets them); only a propagation's own run
// writes them.

// perSpeaker is how many route states per speaker a search makes room for at its start.
const perSpeaker = 4

type state struct {
	speaker int32
	kind    kind
	queued  bool
	set     int32 // offset of the tracked colour set in searchState.sets
	got     int32 // offset of the origins it holds in searchState.routes (pending follows)
}

// searchState is a search's working memory (see the layout above).
type searchState struct {
	sets     []uint64
	states   []state
	at       [][]int32 // speaker → its states
	queue    []int32
	mine     [][]int // speaker → the bits of the pass it originates (it never takes them back)
	scratch  []uint64
	ow       int      // words of an origin set
	routes   []uint64 // origin sets of the states
	offer    []uint64 // the origins being passed on
	crossing []uint64 // those of them that cross the session at hand
	arriving []uint64 // arrive's working copy
	mask     [][2][]uint64
	steps    int
}

// run propagates the routes of the origins of chunk (≤ passWidth) and records, per origin,
// which classes' other members learn them.
func (p *propagation) run(chunk []int, learned learning) error {
	g, s := p.g, &p.search
	s.ow = (len(chunk) + 63) / 64
	// Room for a few states per speaker up front: a small search then grows nothing.
	room := perSpeaker * len(g.speakers)
	s.sets = append(slices.Grow(s.sets[:0], (room+1)*g.words), make([]uint64, g.words)...) // offset 0: the empty set
	s.routes = slices.Grow(s.routes[:0], 2*room*s.ow)
	s.states = slices.Grow(s.states[:0], room)
	s.queue = slices.Grow(s.queue[:0], room)
	s.offer = slices.Grow(s.offer[:0], s.ow)[:s.ow]
	s.crossing = slices.Grow(s.crossing[:0], s.ow)[:s.ow]
	s.arriving = slices.Grow(s.arriving[:0], s.ow)[:s.ow]
	s.scratch = make([]uint64, g.words)
	if len(s.at) != len(g.speakers) {
		s.at = make([][]int32, len(g.speakers))
		at := make([]int32, room)
		for i := range s.at {
			s.at[i] = at[i*perSpeaker : i*perSpeaker : (i+1)*perSpeaker]
		}
		s.mine = make([][]int, len(g.speakers))
	}
	for i := range s.at {
		s.at[i] = s.at[i][:0]
		s.mine[i] = s.mine[i][:0]
	}
	// What crosses each policy, as bits of this pass: [policy][0 own, 1 learnt].
	s.mask = make([][2][]uint64, len(g.policies))
	for i := range g.policies {
		if !g.filtered {
			break
		}
		s.mask[i] = [2][]uint64{make([]uint64, s.ow), make([]uint64, s.ow)}
		for bit, o := range chunk {
			grp := g.origins[o].group
			if g.pass[i][grp]&passOwn != 0 {
				set(s.mask[i][0], bit)
			}
			if g.pass[i][grp]&passLearnt != 0 {
				set(s.mask[i][1], bit)
			}
		}
	}
	for bit, o := range chunk {
		clear(s.offer)
		set(s.offer, bit)
		if !p.arrive(int32(g.standins[g.origins[o].class][0]), originated, 0, nil, s.offer) {
			return p.exceeded()
		}
	}
	// From now on an origin drops its own routes when they come back (ORIGINATOR_ID).
	for bit, o := range chunk {
		u := g.standins[g.origins[o].class][0]
		s.mine[u] = append(s.mine[u], bit)
	}
	for head := 0; head < len(s.queue); head++ {
		si := s.queue[head]
		st := &s.states[si]
		st.queued = false
		k, u, colours := st.kind, st.speaker, st.set
		pend := s.routes[int(st.got)+s.ow : int(st.got)+2*s.ow]
		copy(s.offer, pend)
		clear(pend)
		su := &g.speakers[u]
		for i := range g.arcs[u] {
			e := &g.arcs[u][i]
			if int(e.to) == p.excluded {
				continue
			}
			s.steps++
			if s.steps > p.budget.MaxSteps {
				return p.exceeded()
			}
			cur := s.sets[colours : int(colours)+g.words]
			next := s.scratch
			copy(next, cur)
			var nk kind
			if e.ebgp {
				for w := range next {
					next[w] &^= g.cidMask[w]
				}
				if su.asBit >= 0 {
					set(next, su.asBit)
				}
				if sv := &g.speakers[e.to]; sv.asBit >= 0 && has(next, sv.asBit) {
					continue // AS_PATH loop
				}
				nk = ebgpLearnt
			} else {
				if !k.free() {
					if !su.reflect || (k == fromNonClient && !e.toClient) {
						continue // iBGP routes are passed on only by reflection
					}
					if e.toClient && su.cidBit >= 0 && has(cur, su.cidBit) {
						continue // CLUSTER_LIST loop, checked by the sender toward a client
					}
					if su.cidBit >= 0 {
						set(next, su.cidBit)
					}
				}
				nk = fromNonClient
				if e.asClient {
					nk = fromClient
					if sv := &g.speakers[e.to]; sv.cidBit >= 0 && has(next, sv.cidBit) {
						continue // CLUSTER_LIST loop, checked by a reflector on its client's routes
					}
				}
			}
			src := 1
			if k == originated {
				src = 0
			}
			offer := s.offer
			if g.filtered {
				copy(s.crossing, s.offer)
				if !andMask(s.crossing, s.mask[e.policy][src]) {
					continue // the filters drop every route of the offer on this session
				}
				offer = s.crossing
			}
			if !p.arrive(e.to, nk, -1, next, offer) {
				return p.exceeded()
			}
		}
	}
	got := make([]uint64, s.ow)
	for _, c := range p.a.classesWith(g.f) {
		for i, sp := range g.standins[c] {
			if sp == p.excluded {
				continue
			}
			clear(got)
			for _, si := range s.at[sp] {
				if s.states[si].kind != originated {
					or(got, s.routes[s.states[si].got:int(s.states[si].got)+s.ow])
				}
			}
			p.record(chunk, c, i, sp, got, learned)
		}
	}
	return nil
}

// andMask keeps in x only the bits of mask and reports whether any is left.
func andMask(x, mask []uint64) bool {
	any := false
	for w := range x {
		x[w] &= mask[w]
		if x[w] != 0 {
			any = true
		}
	}
	return any
}

func (p *propagation) exceeded() error {
	return fmt.Errorf("route propagation needs more than %d route states or %d steps (%d states, %d steps so far, %d speakers, %d tracked colours)",
		p.budget.MaxStates, p.budget.MaxSteps, len(p.search.states), p.search.steps, len(p.g.speakers), bitsOf(p.g.cidMask))
}

func bitsOf(ws []uint64) int {
	n := 0
	for _, w := range ws {
		n += bits.OnesCount64(w)
	}
	return n
}

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
func (p *propagation) arrive(v int32, k kind, colours int32, words []uint64, offered []uint64) bool {
	g, s := p.g, &p.search
	routes := s.arriving
	copy(routes, offered)
	for _, b := range s.mine[v] {
		routes[b>>6] &^= 1 << (b & 63)
	}
	if isEmpty(routes) {
		return true
	}
	if colours >= 0 {
		words = s.sets[colours : int(colours)+g.words]
	}
	match := int32(-1)
	for _, si := range s.at[v] {
		st := &s.states[si]
		other := s.sets[st.set : int(st.set)+g.words]
		if st.kind >= k && subset(other, words) {
			if andNot(routes, s.routes[st.got:int(st.got)+s.ow]) {
				return true
			}
		}
		if st.kind == k && subset(other, words) && subset(words, other) {
			match = si
		}
	}
	if match < 0 {
		if len(s.states) >= p.budget.MaxStates {
			return false
		}
		off := int32(0)
		if g.words > 0 && bitsOf(words) > 0 {
			off = int32(len(s.sets))
			s.sets = append(s.sets, words...)
		}
		match = int32(len(s.states))
		gotOff := int32(len(s.routes))
		s.routes = append(s.routes, make([]uint64, 2*s.ow)...)
		s.states = append(s.states, state{speaker: v, kind: k, set: off, got: gotOff})
		s.at[v] = append(s.at[v], match)
	}
	st := &s.states[match]
	or(s.routes[st.got:int(st.got)+s.ow], routes)
	or(s.routes[int(st.got)+s.ow:int(st.got)+2*s.ow], routes)
	if !st.queued {
		st.queued = true
		s.queue = append(s.queue, match)
	}
	return true
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
