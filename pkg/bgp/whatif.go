package bgp

import "sync/atomic"

// whatIfs is what the what-ifs of one analysis may spend together: the steps of one
// propagation (Budget.MaxSteps). Asking every reflector "what if it failed" is a propagation
// per reflector class; without a shared bound, many small ones make one large cost.
type whatIfs struct {
	steps atomic.Int64
}

// WhatIfSteps returns the steps a's what-ifs (LostIfDown) have spent so far.
func (a *Analysis) WhatIfSteps() int { return a.budget.MaxSteps - int(a.whatIf.steps.Load()) }

// LostIfDown returns the gaps, in a's classes, that one failed member of class c would
// open: routes carried over BGP that reach a class's members now and would not then (for c
// itself, its remaining members). It is the what-if of a reflector's failure without a new
// analysis: the session graph stays, the failed member's stand-in is left out. Nil for a
// class with more members than stand-ins (the rest stand for it). checked is false when the
// what-ifs of this analysis have spent their budget (see whatIfs), or a family's exceeds it.
func (a *Analysis) LostIfDown(c int) (gaps []Gap, checked bool) {
	n := len(a.Classes[c].Members)
	if n == 0 || n > standinsPerClass {
		return nil, true
	}
	var out []Gap
	for _, f := range families {
		g := a.graphs[f]
		if g == nil || !a.Classes[c].has[f] || !a.Decided(f) {
			continue
		}
		if g.interchangeable(c) {
			continue
		}
		// A propagation of its own over the shared graph: only the search state is new. Only
		// the routes that reached the failed stand-in (and its own, when it is the class's
		// only member) can be lost; the others keep what the whole graph found.
		s := g.standins[c][n-1]
		only := make([]bool, len(g.origins))
		for o := range g.origins {
			only[o] = has(g.reached[s], o) || (n == 1 && g.origins[o].class == c)
		}
		left := a.whatIf.steps.Load()
		if left <= 0 {
			return out, false
		}
		budget := a.budget
		budget.MaxSteps = int(min(int64(budget.MaxSteps), left))
		p := &propagation{a: a, g: g, budget: budget, excluded: s}
		learned, err := p.learned(c, only)
		a.whatIf.steps.Add(-int64(p.search.steps))
		if err != nil {
			return out, false
		}
		seen := map[[2]int]bool{}
		classes := a.classesWith(f)
		for o, or := range g.origins {
			if or.class == c && n == 1 {
				continue
			}
			if !a.Topology.viaBGP(a.groups.at(or.group)) {
				continue
			}
			for _, d := range classes {
				others := len(a.Classes[d].Members)
				if d == or.class {
					others--
				}
				if d == c {
					others--
				}
				k := [2]int{or.class, d}
				if others > 0 && !learned[o][d] && g.before[o][d] && !seen[k] {
					seen[k] = true
					out = append(out, Gap{Family: f, From: or.class, To: d})
				}
			}
		}
	}
	return out, true
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
