package bgp

import (
	"cmp"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// whatIfs is what the what-ifs of one analysis may spend together: the steps of one
// propagation (Budget.MaxSteps). Asking every reflector "what if it failed" is a propagation
// per reflector class; without a shared bound, many small ones make one large cost.
type whatIfs struct {
	steps atomic.Int64
}

// LostIfDown returns the gaps, in a's classes, that one failed member of class c would
// open: routes carried over BGP that reach a class's members now and would not then (for c
// itself, its remaining members). It is the what-if of a reflector's failure without a new
// analysis: the session graph stays, the failed member's stand-in is left out. Nil for a
// class with more members than stand-ins (the rest stand for it). checked is false when the
// what-ifs of this analysis have spent their budget (see whatIfs), or a family's exceeds it.
func (a *Analysis) LostIfDown(c int) (gaps []Gap, checked bool) {
	gaps, steps, checked := a.lostIfDown(c, a.whatIf.steps.Load())
	a.whatIf.steps.Add(-steps)
	return gaps, checked
}

// LostIfDownEach is LostIfDown for each of classes, within what the analysis's what-ifs may
// still spend, and with the answers one after the other would give, whatever the machine
// does: each what-if may spend the whole budget left, and they count in the order given, a
// what-if being checked only when it fits in what the ones before it left; after the first
// that does not, no what-if that has anything to ask is checked. What-ifs run on the caller's
// goroutine until they have spent serialSteps (a few microseconds each in a small cluster:
// goroutines for them cost more than they save), the rest in parallel; none starts once those
// done have spent more than the budget (it could not be checked).
func (a *Analysis) LostIfDownEach(classes []int, serialSteps int64) (gaps [][]Gap, checked []bool) {
	limit := a.whatIf.steps.Load()
	type result struct {
		gaps      []Gap
		steps     int64
		ran, done bool
	}
	res := make([]result, len(classes))
	var next, spent atomic.Int64
	run := func(k int) {
		if spent.Load() > limit {
			return // those before it spent more than the budget: it cannot be checked
		}
		g, s, ok := a.lostIfDown(classes[k], limit)
		res[k] = result{gaps: g, steps: s, ran: true, done: ok}
		spent.Add(s)
	}
	for spent.Load() < serialSteps {
		k := int(next.Add(1) - 1)
		if k >= len(classes) {
			break
		}
		run(k)
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(classes)-int(next.Load())) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(classes) {
					return
				}
				run(k)
			}
		})
	}
	wg.Wait()
	gaps, checked = make([][]Gap, len(classes)), make([]bool, len(classes))
	var used int64
	over := false
	for k, r := range res {
		switch {
		case !a.asksWhatIf(classes[k]):
			checked[k] = true
		case over || !r.ran || !r.done || used+r.steps > limit:
			over = true
		default:
			gaps[k], checked[k] = r.gaps, true
			used += r.steps
		}
	}
	a.whatIf.steps.Add(-used)
	if over {
		a.whatIf.steps.Store(0)
	}
	return gaps, checked
}

// asksWhatIf reports whether LostIfDown(c) propagates anything (else it answers at once: no
// gap, checked).
func (a *Analysis) asksWhatIf(c int) bool {
	n := len(a.Classes[c].Members)
	if n == 0 || n > standinsPerClass {
		return false
	}
	return slices.ContainsFunc(families[:], func(f Family) bool { return a.asksIn(c, f) })
}

// asksIn reports whether the what-if of class c propagates routes of family f: the family is
// decided, c has members in it, and its stand-ins cannot stand for one another.
func (a *Analysis) asksIn(c int, f Family) bool {
	g := a.graphs[f]
	return g != nil && a.Classes[c].has[f] && a.Decided(f) && !g.interchangeable(c)
}

// lostIfDown is LostIfDown spending at most limit steps; it returns what it spent, and false
// when the limit or a family's budget was too short.
func (a *Analysis) lostIfDown(c int, limit int64) (out []Gap, spent int64, checked bool) {
	if !a.asksWhatIf(c) {
		return nil, 0, true
	}
	n := len(a.Classes[c].Members)
	for _, f := range families {
		if !a.asksIn(c, f) {
			continue
		}
		g := a.graphs[f]
		// A propagation of its own over the shared graph: only the search state is new. Only
		// the routes that reached the failed stand-in (and its own, when it is the class's
		// only member) can be lost; the others keep what the whole graph found.
		s := g.standins[c][n-1]
		only, own := slices.Clone(g.reached[s]), g.own[g.standins[c][0]] // own: c's origins
		if n == 1 {
			for _, o := range own {
				set(only, o)
			}
		}
		left := limit - spent
		if left <= 0 {
			return out, spent, false
		}
		budget := a.budget
		budget.MaxSteps = int(min(int64(budget.MaxSteps), left))
		p := &propagation{a: a, g: g, budget: budget, excluded: s}
		learned, err := p.learned(c, only)
		spent += int64(p.search.steps)
		if err != nil {
			return out, spent, false
		}
		// The class pairs where a route that was learned is not: per learning class, a word
		// of origins at a time. Sorted, one gap per pair.
		eligible := g.viaBGP
		if n == 1 { // c's own routes are gone with its only member
			eligible = slices.Clone(eligible)
			for _, o := range own {
				eligible[o>>6] &^= 1 << (o & 63)
			}
		}
		var lost []Gap
		for _, d := range a.classesWith(f) {
			now, was := learned.row(d), g.before.row(d)
			for w, v := range eligible {
				for m := v & was[w] &^ now[w]; m != 0; m &= m - 1 {
					x := g.origins[w<<6|bits.TrailingZeros64(m)].class
					others := a.others(x, d)
					if d == c {
						others-- // the failed member
					}
					if others > 0 {
						lost = append(lost, Gap{Family: f, From: x, To: d})
					}
				}
			}
		}
		slices.SortFunc(lost, func(x, y Gap) int { return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To)) })
		out = append(out, slices.Compact(lost)...)
	}
	return out, spent, true
}

// interchangeable reports whether the stand-ins of class c are reflectors that can stand for
// one another: two or more, and none has an eBGP session. Then losing one cuts nothing, and
// no what-if is needed. Why, for a walk W of a route that some speaker v (not the failed
// stand-in x) learns over x, in the state graph (closure.go):
//   - The class's stand-ins T share their cluster ID (a tracked colour: two speakers hold
//     it) and their sessions: swapping two of them maps the graph to itself.
//   - A route of another class reaches T first over iBGP (no eBGP session at T), so not free:
//     the member of T it reaches adds the cluster ID as it passes it on. After that, every
//     member of T is a dead end: one takes it from a client only without its own cluster ID
//     in the list (CLUSTER_LIST loop), from a non-client (its own cluster) as fromNonClient,
//     and passes that to clients only without its cluster ID in the list. So W reaches T
//     once in passing, and perhaps once more at its end. If the first is not x, W never
//     passes x and v is not x. If it is x, the same walk with x swapped for a remaining
//     member y of T is valid, avoids x, and reaches v (or y, when v was y: either learns).
//   - Class c's own routes start at T's first member, free: they go to every peer as they
//     are. Where W leaves x the last time, for Y, the first member sends them to Y directly
//     (the same session, by symmetry) with no cluster IDs and the kind Y gives its sender,
//     which dominates W's state at Y; with no narrower first hop (firstHopNarrower), the
//     session lets them through too. The rest of W follows.
//
// TestLostIfDownMatchesWithNode compares it with a fresh analysis of the node down.
func (g *sessionGraph) interchangeable(c int) bool {
	ss := g.standins[c]
	if len(ss) < 2 || g.firstHopNarrower {
		return false
	}
	for _, s := range ss {
		if !g.speakers[s].reflect || g.speakers[s].cidBit < 0 || g.ebgpAt[s] {
			return false
		}
	}
	return true
}
