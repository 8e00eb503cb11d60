package bgp

// closure decides a pass when no colour is tracked: a route's journey then depends only on
// (speaker, kind) and on which sessions its group crosses, a fixed graph whatever the origin,
// so the origins reaching each strongly connected component of that graph are pushed along
// its condensation in topological order. Origins whose groups cross the same sessions share
// one graph. Linear in the graph's size per such set; what the search would find (tests
// compare the two).
func (p *propagation) closure(chunk []int, learned [][]bool) {
	g := p.g
	byPattern := map[string][]int{}
	var patterns []string
	for _, o := range chunk {
		grp := g.origins[o].group
		key := make([]byte, len(g.policies))
		for i := range g.policies {
			key[i] = g.pass[i][grp]
		}
		k := string(key)
		if _, ok := byPattern[k]; !ok {
			patterns = append(patterns, k)
		}
		byPattern[k] = append(byPattern[k], o)
	}
	for _, k := range patterns {
		p.closureOf(byPattern[k], learned)
	}
}

// closureOf is closure for origins whose groups cross the same sessions (grp of the first
// stands for all).
func (p *propagation) closureOf(chunk []int, learned [][]bool) {
	g := p.g
	grp := g.origins[chunk[0]].group
	n := len(g.speakers) * kinds
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
		su := &g.speakers[u]
		for i := range g.arcs[u] {
			e := &g.arcs[u][i]
			if int(e.to) == p.excluded || !g.crosses(e, grp, k) {
				continue
			}
			switch {
			case e.ebgp:
				edges = append(edges, e.to*kinds+int32(ebgpLearnt))
				continue
			case k.free():
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
	comp, order, ncomp := tarjan(n, offs, edges, func(visit func(int32)) {
		for _, o := range chunk {
			visit(int32(g.standins[g.origins[o].class][0]*kinds + int(originated)))
		}
	})
	ow := (len(chunk) + 63) / 64
	bitsOfComp := make([]uint64, int(ncomp)*ow)
	at := func(c int32) []uint64 { return bitsOfComp[int(c)*ow : int(c+1)*ow] }
	for bit, o := range chunk {
		x := g.standins[g.origins[o].class][0]*kinds + int(originated)
		set(at(comp[x]), bit)
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
	for _, c := range p.a.classesWith(g.f) {
		for i, s := range g.standins[c] {
			if s == p.excluded {
				continue
			}
			clear(got)
			for k := 0; k < kinds; k++ {
				if kind(k) == originated {
					continue // its own routes: not learned
				}
				if cx := comp[s*kinds+k]; cx >= 0 {
					or(got, at(cx))
				}
			}
			p.record(chunk, c, i, got, learned)
		}
	}
}

// tarjan finds the strongly connected components of the graph of n states whose successors
// are edges[offs[x]:offs[x+1]], reachable from the states starts visits; it returns each
// state's component (-1: unreached), the reached states by component in reverse topological
// order (sinks first), and the number of components. Iterative.
func tarjan(n int, offs, edges []int32, starts func(visit func(int32))) (comp, order []int32, ncomp int32) {
	index, low := make([]int32, n), make([]int32, n)
	comp = make([]int32, n)
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	var stack []int32
	onStack := make([]bool, n)
	next := int32(0)
	type frame struct{ x, i int32 } // state, next successor to look at
	var frames []frame
	push := func(x int32) {
		index[x], low[x] = next, next
		next++
		stack = append(stack, x)
		onStack[x] = true
		frames = append(frames, frame{x, offs[x]})
	}
	starts(func(start int32) {
		if index[start] >= 0 {
			return
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
	})
	return comp, order, ncomp
}
