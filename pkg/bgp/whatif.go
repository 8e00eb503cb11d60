package bgp

// LostIfDown returns the gaps, in a's classes, that one failed member of class c would
// open: routes carried over BGP that reach a class's members now and would not then (for c
// itself, its remaining members). It is the what-if of a reflector's failure without a new
// analysis: the session graph stays, the failed member's stand-in is left out. Nil for a
// class with more members than stand-ins (the rest stand for it), and for a family whose
// what-if exceeds the budget.
func (a *Analysis) LostIfDown(c int) []Gap {
	n := len(a.Classes[c].Members)
	if n == 0 || n > standinsPerClass {
		return nil
	}
	var out []Gap
	for _, f := range families {
		g := a.graphs[f]
		if g == nil || !a.Classes[c].has[f] || !a.Decided(f) {
			continue
		}
		// A propagation of its own over the shared graph: only the search state is new.
		p := &propagation{a: a, g: g, budget: a.budget, excluded: g.standins[c][n-1]}
		learned, err := p.learned(c)
		if err != nil {
			continue
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
	return out
}
