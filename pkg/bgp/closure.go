package bgp

import (
	"slices"
	"sync"
)

// The closure decides a family without the search where it can: a route's journey depends
// only on its state — (speaker, kind), and the tracked colours (colour sets, see
// propagate.go) where there are any — and on which sessions its group crosses, a fixed graph
// whatever the origin. So the state graph is made once for every origin whose group crosses
// the same sessions, its strongly connected components found, and the origins reaching each
// pushed along the condensation in topological order: linear in the graph's size, where the
// search walks the graph again per pass of passWidth origins. Without colours the states are
// every (speaker, kind); with colours they are made as the routes reach them, without the
// search's domination (a state is kept whatever other states hold), so the graph can be much
// larger than the search's states: past the budget the closure gives up and the search
// decides. What-ifs (LostIfDown) reuse the whole graph's state graph with the failed
// stand-in's states left out. What the search would find (tests compare the two).

// stateGraph is the state graph of one set of origins: state x is (speaker[x], kinds[x]),
// its successors edges[offs[x]:offs[x+1]]; start[o] is origin o's originated state (-1: not
// of this graph). A speaker's states are a list: head[u] is its last, link[x] the one
// before x (-1: none).
type stateGraph struct {
	speaker []int32
	kind    []kind
	offs    []int32
	edges   []int32
	head    []int32
	link    []int32
	start   []int32
}

// sgScratch is stateGraph's working memory (pooled): the graph grows in it, and is copied
// out at its final size.
type sgScratch struct {
	speaker, offs, edges, head, link []int32
	kind                             []kind
	sets, next, empty                []uint64
}

var sgPool = sync.Pool{New: func() any { return new(sgScratch) }}

// owned returns a copy of s with no spare capacity.
func owned[T any](s []T) []T { return append(make([]T, 0, len(s)), s...) }

// patternOf is the sessions a group's routes cross, as a key: origins of one pattern share
// a state graph.
func (g *sessionGraph) patternOf(grp int) string {
	key := make([]byte, len(g.policies))
	for i := range g.policies {
		key[i] = g.pass[i][grp]
	}
	return string(key)
}

// closure decides the origins of chunk by state graphs, per pattern; it reports false when a
// graph exceeds the budget (nothing of chunk is then recorded as decided: the caller clears
// and searches).
func (p *propagation) closure(chunk []int, learned learning) bool {
	g := p.g
	byPattern := map[string][]int{}
	var patterns []string
	for _, o := range chunk {
		k := g.patternOf(g.origins[o].group)
		if _, ok := byPattern[k]; !ok {
			patterns = append(patterns, k)
		}
		byPattern[k] = append(byPattern[k], o)
	}
	for _, k := range patterns {
		sg := g.saved[k]
		if sg == nil {
			var ok bool
			if sg, ok = p.stateGraph(byPattern[k], k); !ok {
				return false
			}
			if p.excluded < 0 {
				if g.saved == nil {
					g.saved = map[string]*stateGraph{}
				}
				g.saved[k] = sg
			}
		}
		p.push(sg, byPattern[k], learned)
	}
	return true
}

// stateGraph makes the state graph of the origins of chunk (one pattern: what crosses each
// policy's sessions, patternOf), leaving out the excluded stand-in; false past the budget.
func (p *propagation) stateGraph(chunk []int, pattern string) (*stateGraph, bool) {
	g := p.g
	w := g.words
	sc := sgPool.Get().(*sgScratch)
	defer sgPool.Put(sc)
	sc.speaker, sc.kind, sc.offs, sc.edges, sc.link, sc.sets = sc.speaker[:0], sc.kind[:0], sc.offs[:0], sc.edges[:0], sc.link[:0], sc.sets[:0]
	sc.head = resize(sc.head, len(g.speakers))
	for u := range sc.head {
		sc.head[u] = -1
	}
	sc.next, sc.empty = resize(sc.next, w), resize(sc.empty, w)
	clear(sc.empty)
	state := func(u int32, k kind, colours []uint64) (int32, bool) {
		for id := sc.head[u]; id >= 0; id = sc.link[id] {
			if sc.kind[id] == k && slices.Equal(sc.sets[int(id)*w:int(id+1)*w], colours) {
				return id, true
			}
		}
		if len(sc.speaker) >= p.budget.MaxStates {
			return 0, false
		}
		id := int32(len(sc.speaker))
		sc.link = append(sc.link, sc.head[u])
		sc.head[u] = id
		sc.speaker, sc.kind = append(sc.speaker, u), append(sc.kind, k)
		sc.sets = append(sc.sets, colours...)
		return id, true
	}
	start := make([]int32, len(g.origins))
	for o := range start {
		start[o] = -1
	}
	for _, o := range chunk {
		id, ok := state(int32(g.standins[g.origins[o].class][0]), originated, sc.empty)
		if !ok {
			return nil, false
		}
		start[o] = id
	}
	next := sc.next
	for x := int32(0); int(x) < len(sc.speaker); x++ {
		sc.offs = append(sc.offs, int32(len(sc.edges)))
		u, k := sc.speaker[x], sc.kind[x]
		if int(u) == p.excluded {
			continue
		}
		su := &g.speakers[u]
		if !k.free() && !su.reflect && !g.ebgpAt[u] {
			continue // a route learned over iBGP stops at a speaker that does not reflect
		}
		bit := uint8(passLearnt)
		if k == originated {
			bit = passOwn
		}
		for i := range g.arcs[u] {
			e := &g.arcs[u][i]
			if int(e.to) == p.excluded || pattern[e.policy]&bit == 0 {
				continue
			}
			cur := sc.sets[int(x)*w : int(x+1)*w]
			copy(next, cur)
			var nk kind
			if e.ebgp {
				for j := range next {
					next[j] &^= g.cidMask[j]
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
			y, ok := state(e.to, nk, next)
			if !ok || len(sc.edges) >= p.budget.MaxSteps {
				return nil, false
			}
			sc.edges = append(sc.edges, y)
		}
	}
	sc.offs = append(sc.offs, int32(len(sc.edges)))
	p.search.steps += len(sc.edges)
	return &stateGraph{speaker: owned(sc.speaker), kind: owned(sc.kind), offs: owned(sc.offs), edges: owned(sc.edges),
		head: owned(sc.head), link: owned(sc.link), start: start}, true
}

// push runs the origins of chunk over state graph sg, leaving out the excluded stand-in's
// states, and records what each class's stand-ins learn.
func (p *propagation) push(sg *stateGraph, chunk []int, learned learning) {
	g := p.g
	t := sccPool.Get().(*scc)
	defer sccPool.Put(t)
	t.starts = t.starts[:0]
	for _, o := range chunk {
		t.starts = append(t.starts, sg.start[o])
	}
	ncomp := t.run(sg.offs, sg.edges, sg.speaker, int32(p.excluded), t.starts)
	comp, order := t.comp, t.order
	ow := (len(chunk) + 63) / 64
	t.bits = resize(t.bits, int(ncomp)*ow)
	clear(t.bits)
	bitsOf := func(c int32) []uint64 { return t.bits[int(c)*ow : int(c+1)*ow] }
	for bit, o := range chunk {
		if c := comp[sg.start[o]]; c >= 0 {
			set(bitsOf(c), bit)
		}
	}
	// order lists states by component, sinks first: walk it backwards (sources first).
	// Each pair of components is joined once, however many edges run between them.
	joined := resize(t.joined, int(ncomp))
	t.joined = joined
	for i := range joined {
		joined[i] = -1
	}
	for i := len(order) - 1; i >= 0; i-- {
		x := order[i]
		cx := comp[x]
		from := bitsOf(cx)
		for _, y := range sg.edges[sg.offs[x]:sg.offs[x+1]] {
			if cy := comp[y]; cy >= 0 && cy != cx && joined[cy] != cx {
				joined[cy] = cx
				or(bitsOf(cy), from)
			}
		}
	}
	// What each stand-in holds: the union over its states, its own routes aside.
	got := resize(t.got, ow)
	t.got = got
	for c := range g.standins { // a class without the family has no stand-ins
		for i, s := range g.standins[c] {
			if s == p.excluded {
				continue
			}
			clear(got)
			for x := sg.head[s]; x >= 0; x = sg.link[x] {
				if sg.kind[x] != originated {
					if cx := comp[x]; cx >= 0 {
						or(got, bitsOf(cx))
					}
				}
			}
			p.record(chunk, c, i, s, got, learned)
		}
	}
	p.search.steps += len(sg.edges)
}

// scc is the working memory of push: Tarjan's arrays and the components' route sets. A
// decision pushes a few times (the state after the change, each what-if), each over a small
// graph: reusing them (sccPool) spares the allocations, which were a tenth of a decision's.
type scc struct {
	index, low, comp, stack, order []int32
	onStack                        []bool
	frames                         []sccFrame
	bits                           []uint64
	joined                         []int32
	got                            []uint64
	starts                         []int32
}

// sccFrame is a state of Tarjan's walk and the next successor to look at.
type sccFrame struct{ x, i int32 }

var sccPool = sync.Pool{New: func() any { return new(scc) }}

// resize returns s with length n, reallocated only when its capacity is short; the caller
// sets the values.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// run finds the strongly connected components of the graph whose successors of state x are
// edges[offs[x]:offs[x+1]], reachable from starts, leaving out the states of speaker
// excluded (speaker[x]; -1: none): t.comp holds each state's component (-1: unreached),
// t.order the reached states by component in reverse topological order (sinks first). It
// returns the number of components. Iterative.
func (t *scc) run(offs, edges, speaker []int32, excluded int32, starts []int32) (ncomp int32) {
	n := len(speaker)
	t.index, t.low, t.comp = resize(t.index, n), resize(t.low, n), resize(t.comp, n)
	t.onStack = resize(t.onStack, n)
	index, low, comp, onStack := t.index, t.low, t.comp, t.onStack
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	clear(onStack)
	stack, order, frames := t.stack[:0], t.order[:0], t.frames[:0]
	next := int32(0)
	for _, start := range starts {
		if index[start] >= 0 || speaker[start] == excluded {
			continue
		}
		index[start], low[start] = next, next
		next++
		stack = append(stack, start)
		onStack[start] = true
		frames = append(frames, sccFrame{start, offs[start]})
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			if f.i < offs[f.x+1] {
				y := edges[f.i]
				f.i++
				if speaker[y] == excluded {
					continue
				}
				if index[y] < 0 {
					index[y], low[y] = next, next
					next++
					stack = append(stack, y)
					onStack[y] = true
					frames = append(frames, sccFrame{y, offs[y]})
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
	t.stack, t.order, t.frames = stack, order, frames
	return ncomp
}
