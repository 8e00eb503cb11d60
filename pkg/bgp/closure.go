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
// its successors edges[offs[x]:offs[x+1]]; start[o] is origin o's originated state (-1: none).
type stateGraph struct {
	speaker []int32
	kind    []kind
	offs    []int32
	edges   []int32
	at      [][]int32 // speaker → its states
	start   map[int]int32
}

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
func (p *propagation) closure(chunk []int, learned [][]bool) bool {
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
			if sg, ok = p.stateGraph(byPattern[k]); !ok {
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

// stateGraph makes the state graph of the origins of chunk (one pattern), leaving out the
// excluded stand-in; false past the budget.
func (p *propagation) stateGraph(chunk []int) (*stateGraph, bool) {
	g := p.g
	grp := g.origins[chunk[0]].group
	w := g.words
	// Room for every (speaker, kind) and an arc each: the graph without colours.
	n, arcs := kinds*len(g.speakers), 0
	for u := range g.arcs {
		arcs += len(g.arcs[u])
	}
	sg := &stateGraph{at: make([][]int32, len(g.speakers)), start: make(map[int]int32, len(chunk)),
		speaker: make([]int32, 0, n), kind: make([]kind, 0, n), offs: make([]int32, 0, n+1), edges: make([]int32, 0, kinds*arcs)}
	sets := make([]uint64, 0, n*w)
	state := func(u int32, k kind, colours []uint64) (int32, bool) {
		for _, id := range sg.at[u] {
			if sg.kind[id] == k && slices.Equal(sets[int(id)*w:int(id+1)*w], colours) {
				return id, true
			}
		}
		if len(sg.speaker) >= p.budget.MaxStates {
			return 0, false
		}
		id := int32(len(sg.speaker))
		sg.at[u] = append(sg.at[u], id)
		sg.speaker, sg.kind = append(sg.speaker, u), append(sg.kind, k)
		sets = append(sets, colours...)
		return id, true
	}
	empty := make([]uint64, w)
	for _, o := range chunk {
		id, ok := state(int32(g.standins[g.origins[o].class][0]), originated, empty)
		if !ok {
			return nil, false
		}
		sg.start[o] = id
	}
	next := make([]uint64, w)
	for x := int32(0); int(x) < len(sg.speaker); x++ {
		sg.offs = append(sg.offs, int32(len(sg.edges)))
		u, k := sg.speaker[x], sg.kind[x]
		if int(u) == p.excluded {
			continue
		}
		su := &g.speakers[u]
		for i := range g.arcs[u] {
			e := &g.arcs[u][i]
			if int(e.to) == p.excluded || !g.crosses(e, grp, k) {
				continue
			}
			cur := sets[int(x)*w : int(x+1)*w]
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
			if !ok || len(sg.edges) >= p.budget.MaxSteps {
				return nil, false
			}
			sg.edges = append(sg.edges, y)
		}
	}
	sg.offs = append(sg.offs, int32(len(sg.edges)))
	p.search.steps += len(sg.edges)
	return sg, true
}

// push runs the origins of chunk over state graph sg, leaving out the excluded stand-in's
// states, and records what each class's stand-ins learn.
func (p *propagation) push(sg *stateGraph, chunk []int, learned [][]bool) {
	g := p.g
	t := sccPool.Get().(*scc)
	defer sccPool.Put(t)
	ncomp := t.run(len(sg.speaker), sg.offs, sg.edges, func(x int32) bool { return int(sg.speaker[x]) == p.excluded }, func(visit func(int32)) {
		for _, o := range chunk {
			visit(sg.start[o])
		}
	})
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
	for _, c := range p.a.classesWith(g.f) {
		for i, s := range g.standins[c] {
			if s == p.excluded {
				continue
			}
			clear(got)
			for _, x := range sg.at[s] {
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

// run finds the strongly connected components of the graph of n states whose successors are
// edges[offs[x]:offs[x+1]], reachable from the states starts visits and not skipped: t.comp
// holds each state's component (-1: unreached), t.order the reached states by component in
// reverse topological order (sinks first). It returns the number of components. Iterative.
func (t *scc) run(n int, offs, edges []int32, skip func(int32) bool, starts func(visit func(int32))) (ncomp int32) {
	t.index, t.low, t.comp = resize(t.index, n), resize(t.low, n), resize(t.comp, n)
	t.onStack = resize(t.onStack, n)
	index, low, comp, onStack := t.index, t.low, t.comp, t.onStack
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	clear(onStack)
	stack, order, frames := t.stack[:0], t.order[:0], t.frames[:0]
	next := int32(0)
	push := func(x int32) {
		index[x], low[x] = next, next
		next++
		stack = append(stack, x)
		onStack[x] = true
		frames = append(frames, sccFrame{x, offs[x]})
	}
	starts(func(start int32) {
		if index[start] >= 0 || skip(start) {
			return
		}
		push(start)
		for len(frames) > 0 {
			f := &frames[len(frames)-1]
			if f.i < offs[f.x+1] {
				y := edges[f.i]
				f.i++
				if skip(y) {
					continue
				}
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
	})
	t.stack, t.order, t.frames = stack, order, frames
	return ncomp
}
