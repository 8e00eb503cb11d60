package bgp

// Route propagation runs on a reduced graph: every class is stood for by at most two members
// (plus the origin in its own class), and every external peer by itself. Members of a class
// are interchangeable, so whether a member of class D learns a route depends only on whether D
// has zero, one, or at least two members other than the origin: two stand-ins keep every
// path that exists in the full graph (a route may pass from one member of a class to another).

// bitset is a small set of indexes (cluster IDs or AS numbers).
type bitset [4]uint64

func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

func (b bitset) with(i int) bitset {
	b[i>>6] |= 1 << (i & 63)
	return b
}

const maxIndexed = len(bitset{}) * 64

type learnedVia uint8

const (
	viaOwn learnedVia = iota
	viaClient
	viaNonClient
	viaEBGP
)

type speaker struct {
	class  int // -1 for an external peer
	origin bool
	cid    int // cluster ID index, -1 for none
	as     uint32
	asIdx  int
}

type routeState struct {
	at   int
	via  learnedVia
	cl   bitset // CLUSTER_LIST
	path bitset // AS_PATH
}

type propagation struct {
	a        *Analysis
	f        Family
	cidIdx   map[string]int
	asIdx    map[uint32]int
	speakers []speaker
	adj      [][]int
}

func (p *propagation) indexCID(id string) int {
	i, ok := p.cidIdx[id]
	if !ok {
		i = len(p.cidIdx) % maxIndexed
		p.cidIdx[id] = i
	}
	return i
}

func (p *propagation) indexAS(as uint32) int {
	i, ok := p.asIdx[as]
	if !ok {
		i = len(p.asIdx) % maxIndexed
		p.asIdx[as] = i
	}
	return i
}

func (a *Analysis) propagate(f Family) {
	p := &propagation{a: a, f: f, cidIdx: map[string]int{}, asIdx: map[uint32]int{}}
	for c := range a.Classes {
		if !a.Classes[c].has[f] {
			continue
		}
		learned := p.run(c)
		for d := range a.Classes {
			if !a.Classes[d].has[f] {
				continue
			}
			others := len(a.Classes[d].Members)
			if d == c {
				others--
			}
			if others > 0 && !learned[d] {
				g := Gap{Family: f, From: c, To: d}
				a.Gaps = append(a.Gaps, g)
				a.gapSet[g] = true
			}
		}
	}
}

// build lays out the stand-ins for a route originated in class origin.
func (p *propagation) build(origin int) {
	a := p.a
	p.speakers = p.speakers[:0]
	for c := range a.Classes {
		cc := &a.Classes[c]
		if !cc.has[p.f] {
			continue
		}
		cid := -1
		if cc.ClusterID != "" {
			cid = p.indexCID(cc.ClusterID)
		}
		n := len(cc.Members)
		if c == origin {
			p.speakers = append(p.speakers, speaker{class: c, origin: true, cid: cid, as: cc.AS, asIdx: p.indexAS(cc.AS)})
			n--
		}
		for i := 0; i < min(n, 2); i++ {
			p.speakers = append(p.speakers, speaker{class: c, cid: cid, as: cc.AS, asIdx: p.indexAS(cc.AS)})
		}
	}
	firstExt := len(p.speakers)
	for _, e := range a.externals {
		if e.f != p.f {
			continue
		}
		// An external iBGP peer is assumed to reflect for everyone: rrguard cannot see its
		// configuration, so it gives it the benefit of the doubt.
		p.speakers = append(p.speakers, speaker{class: -1, cid: p.indexCID("external/" + e.ip), as: e.as, asIdx: p.indexAS(e.as)})
	}
	if cap(p.adj) < len(p.speakers) {
		p.adj = make([][]int, len(p.speakers))
	}
	p.adj = p.adj[:len(p.speakers)]
	for u := range p.speakers {
		p.adj[u] = p.adj[u][:0]
	}
	for u := 0; u < len(p.speakers); u++ {
		for v := u + 1; v < len(p.speakers); v++ {
			if p.linked(u, v, firstExt) {
				p.adj[u] = append(p.adj[u], v)
				p.adj[v] = append(p.adj[v], u)
			}
		}
	}
}

func (p *propagation) linked(u, v, firstExt int) bool {
	su, sv := &p.speakers[u], &p.speakers[v]
	switch {
	case su.class >= 0 && sv.class >= 0:
		return p.a.session[p.f][su.class][sv.class]
	case su.class >= 0:
		return p.a.extSess[su.class][p.extIndex(v-firstExt)]
	case sv.class >= 0:
		return p.a.extSess[sv.class][p.extIndex(u-firstExt)]
	default:
		return false
	}
}

// extIndex maps the i-th external of this family to its index in Analysis.externals.
func (p *propagation) extIndex(i int) int {
	for x, e := range p.a.externals {
		if e.f != p.f {
			continue
		}
		if i == 0 {
			return x
		}
		i--
	}
	return -1
}

// treatsAsClient reports whether speaker v marks its session with u as "rr client".
func (p *propagation) treatsAsClient(v, u int) bool {
	sv, su := &p.speakers[v], &p.speakers[u]
	return sv.cid >= 0 && sv.as == su.as && su.cid != sv.cid
}

// run simulates the route of one origin member of class origin and returns, per class,
// whether its non-origin members learn it.
func (p *propagation) run(origin int) []bool {
	p.build(origin)
	learned := make([]bool, len(p.a.Classes))
	start := -1
	for i := range p.speakers {
		if p.speakers[i].origin {
			start = i
		}
	}
	seen := map[routeState]bool{}
	queue := []routeState{{at: start, via: viaOwn}}
	seen[queue[0]] = true
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		u := &p.speakers[s.at]
		for _, v := range p.adj[s.at] {
			sv := &p.speakers[v]
			if sv.origin {
				continue
			}
			next := routeState{at: v}
			if u.as != sv.as {
				// eBGP: every best route is advertised; CLUSTER_LIST is not carried; the
				// receiver drops routes whose AS_PATH holds its own AS.
				next.path = s.path.with(u.asIdx)
				if next.path.has(sv.asIdx) {
					continue
				}
				next.via = viaEBGP
			} else {
				switch s.via {
				case viaOwn, viaEBGP:
					next.cl = s.cl
				case viaClient:
					next.cl = s.cl.with(u.cid)
				case viaNonClient:
					// Routes from a non-client are reflected to clients only; a speaker
					// without a cluster ID re-advertises nothing learned over iBGP.
					if u.cid < 0 || !p.treatsAsClient(s.at, v) {
						continue
					}
					next.cl = s.cl.with(u.cid)
				}
				if sv.cid >= 0 && next.cl.has(sv.cid) {
					continue // CLUSTER_LIST loop check
				}
				next.path = s.path
				next.via = viaNonClient
				if p.treatsAsClient(v, s.at) {
					next.via = viaClient
				}
			}
			if seen[next] {
				continue
			}
			seen[next] = true
			if sv.class >= 0 {
				learned[sv.class] = true
			}
			queue = append(queue, next)
		}
	}
	return learned
}
