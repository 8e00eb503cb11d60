package controller

import (
	"time"

	"github.com/rrguard/rrguard/pkg/plan"
)

// memory is what the controller saw of each node, to tell a lasting loss from a flap: a
// reflector unfit (NotReady, cordoned, excluded, …) for less than grace is kept; one unfit
// for grace is lost, and stays lost until it has been fit again for settle; no node unfit, or
// moved to another zone, within settle is made a reflector. So a node that flaps moves at
// most one reflector: its own replacement.
type memory struct {
	grace, settle time.Duration
	nodes         map[string]*seen
}

// seen is one node's history as the controller observed it.
type seen struct {
	zone string
	// unfitSince starts the current unfit spell (zero while fit); lastUnfit is when the node
	// was last unfit (or moved zone).
	unfitSince, lastUnfit time.Time
	// lost: a reflector that was unfit for grace (or moved zone), until it settles.
	lost bool
}

// observe records the nodes as placement sees them now and returns the verdicts to plan
// with: reflectors whose loss is still within grace, and nodes not settled yet; wake is how
// long until one of those verdicts changes (0: none will).
func (m *memory) observe(now time.Time, views map[string]plan.NodeView) (inGrace, unsettled map[string]bool, wake time.Duration) {
	for name := range m.nodes {
		if _, ok := views[name]; !ok {
			delete(m.nodes, name)
		}
	}
	inGrace, unsettled = map[string]bool{}, map[string]bool{}
	soonest := func(d time.Duration) {
		if d > 0 && (wake == 0 || d < wake) {
			wake = d
		}
	}
	for name, v := range views {
		s := m.nodes[name]
		if s == nil {
			s = &seen{zone: v.Zone}
			m.nodes[name] = s
		}
		if v.Zone != s.zone {
			// A node that changes zone is new to both: a reflector there is lost to its
			// old zone, and not trusted in its new one until it settles.
			s.zone, s.lastUnfit = v.Zone, now
			s.lost = s.lost || v.Reflector
		}
		if v.Unfit != "" {
			if s.unfitSince.IsZero() {
				s.unfitSince = now
			}
			s.lastUnfit = now
			if v.Reflector && now.Sub(s.unfitSince) >= m.grace {
				s.lost = true
			}
			if v.Reflector && !s.lost {
				inGrace[name] = true
				soonest(s.unfitSince.Add(m.grace).Sub(now))
			}
			continue
		}
		if !s.unfitSince.IsZero() {
			s.unfitSince, s.lastUnfit = time.Time{}, now
		}
		switch {
		case s.lastUnfit.IsZero():
		case now.Sub(s.lastUnfit) >= m.settle:
			s.lost = false
		case !v.Reflector || s.lost:
			unsettled[name] = true
			soonest(s.lastUnfit.Add(m.settle).Sub(now))
		}
	}
	return inGrace, unsettled, wake
}
