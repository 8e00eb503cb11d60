package validate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

var routePropagationRule = Rule{
	ID: RuleRoutePropagation, Default: Deny,
	Summary: "some node would not learn some other node's pod routes",
	Doc:     "any change after which some node would not learn some other node's pod routes: isolated nodes, reflectors not peered with each other, shared-ID partitions, … (the mesh switched off before the peers exist, PR #4992); past the simulation's budget, a warning that the check could not be done",
	checks: []checker{
		check[bgp.Undecided]{checkOpts: checkOpts{always: true}, problems: undecidedFamilies, render: renderUndecidedFamilies},
		check[bgp.Family]{checkOpts: checkOpts{model: true}, problems: routeGaps, render: renderRouteGaps},
		check[int]{checkOpts: checkOpts{always: true}, problems: unlistedGaps, render: renderUnlistedGaps},
	},
	breaks: true,
}

// undecidedFamilies: the families whose simulation stopped at its budget (see bgp.Budget).
func undecidedFamilies(_ *Engine, s *model.Snapshot) []problem[bgp.Undecided] {
	var out []problem[bgp.Undecided]
	for _, u := range s.Analysis.Undecided {
		out = append(out, problem[bgp.Undecided]{key: u.Family.String(), data: u})
	}
	return out
}

// renderUndecidedFamilies says that route propagation was not checked: never hang and never
// refuse on a guess. The other rules still ran.
func renderUndecidedFamilies(_ *judgment, _ *model.Snapshot, parts []part[bgp.Undecided]) []Finding {
	var out []Finding
	for _, p := range parts {
		u := p.data
		out = append(out, unchecked(finding(RuleRoutePropagation, ObjectRef{Kind: calico.KindBGPConfiguration, Name: calico.DefaultConfigName}, "",
			fmt.Sprintf("%s route propagation was not checked: %s; rrguard cannot tell whether every node learns every other node's %s pod routes (the other rules ran). This takes many cluster IDs each shared by several reflectors, or many ASes of several nodes, peered in many ways; simplify the peering or check the paths with rrguard sessions",
				u.Family, u.Reason, u.Family))))
	}
	return out
}

// routeGaps: the pairs of classes (from, to) whose routes do not propagate, in some family
// (data). A gap is the same problem in either family: a change that breaks in IPv6 what was
// broken in IPv4 introduces nothing. Gaps of a reflector left without sessions while the mesh
// is on are reflector-without-peers' to report.
func routeGaps(_ *Engine, s *model.Snapshot) []problem[bgp.Family] {
	out := make([]problem[bgp.Family], 0, min(s.Analysis.GapCount(), maxGapPairs))
	for g := range s.Analysis.Gaps() {
		if len(out) == maxGapPairs {
			break // unlistedGaps says so
		}
		p := problem[bgp.Family]{classes: []int{g.From, g.To}, data: g.Family}
		if isolatedReflector(s, g.From) || isolatedReflector(s, g.To) {
			p.reportedBy = RuleReflectorWithoutPeers
		}
		out = append(out, p)
	}
	return out
}

// maxGapPairs is how many class pairs with a gap route-propagation judges and lists: with a
// BGPPeer per node, every node is a class of its own, and a design rrguard cannot follow (a
// fabric of routers outside the cluster) makes millions of pairs. Past it, the first ones
// (by class) are judged and a warning says how many were not.
const maxGapPairs = 10000

// maxLossesPerCause is how many losses a route-propagation finding spells out per cause; it
// counts the others.
const maxLossesPerCause = 10

// unlistedGaps: the class pairs with a gap past maxGapPairs (data: how many), never judged.
func unlistedGaps(_ *Engine, s *model.Snapshot) []problem[int] {
	if n := s.Analysis.GapCount() - maxGapPairs; n > 0 {
		return []problem[int]{{key: "unlisted", data: n}}
	}
	return nil
}

// renderUnlistedGaps says that some gaps were not judged: a warning, never a refusal.
func renderUnlistedGaps(_ *judgment, s *model.Snapshot, parts []part[int]) []Finding {
	var out []Finding
	for _, p := range parts {
		out = append(out, unchecked(finding(RuleRoutePropagation, ObjectRef{Kind: calico.KindBGPConfiguration, Name: calico.DefaultConfigName}, "",
			fmt.Sprintf("%d pairs of node groups do not learn one another's pod routes; rrguard judged and reported the first %d only and did not check the other %d (a change that breaks routes among them is not refused): fix the gaps reported first, or check the paths with rrguard sessions",
				s.Analysis.GapCount(), maxGapPairs, p.data))))
	}
	return out
}

// renderRouteGaps words the gaps, one finding per cause: the gaps a cause explains are listed
// together.
func renderRouteGaps(j *judgment, s *model.Snapshot, parts []part[bgp.Family]) []Finding {
	type block struct {
		from, to []string
		family   bgp.Family
		fc, tc   int
	}
	var blocks []block
	for _, p := range parts {
		from, to := p.members[0], p.members[1]
		if len(from) == 1 && len(to) == 1 && from[0] == to[0] {
			continue // a node always has its own routes
		}
		blocks = append(blocks, block{sorted(from), sorted(to), p.data, p.classes[0], p.classes[1]})
	}
	sort.SliceStable(blocks, func(i, k int) bool {
		if blocks[i].to[0] != blocks[k].to[0] {
			return blocks[i].to[0] < blocks[k].to[0]
		}
		return blocks[i].from[0] < blocks[k].from[0]
	})
	type gap struct {
		subject, cause string
		whats          []string // what is lost, in order
		seen           map[string]bool
	}
	var gaps []gap
	byCause := map[string]int{}
	// The rejections of a route group are the same for every pair: looked up once.
	type groupKey struct {
		f bgp.Family
		g int
	}
	rejections := map[groupKey][]bgp.Rejection{}
	rejected := func(f bgp.Family, g int) []bgp.Rejection {
		rs, ok := rejections[groupKey{f, g}]
		if !ok {
			rs = s.Analysis.Rejections(f, g)
			rejections[groupKey{f, g}] = rs
		}
		return rs
	}
	for _, b := range blocks {
		cause, isolated := j.e.diagnose(s, b.family, b.fc, b.tc, rejected)
		var what string
		subject := b.to[0]
		switch {
		case isolated != nil:
			what = fmt.Sprintf("%s would exchange no %s pod routes with any other node", nameList(isolated), b.family)
			subject = isolated[0]
		case slices.Equal(b.from, b.to):
			what = fmt.Sprintf("%s would not learn one another's %s pod routes", nameList(b.to), b.family)
		default:
			what = fmt.Sprintf("%s would not learn the %s pod routes of %s", nameList(b.to), b.family, nameList(b.from))
		}
		i, ok := byCause[cause]
		if !ok {
			i = len(gaps)
			byCause[cause] = i
			gaps = append(gaps, gap{subject: subject, cause: cause, seen: map[string]bool{}})
		}
		if !gaps[i].seen[what] {
			gaps[i].seen[what] = true
			gaps[i].whats = append(gaps[i].whats, what)
		}
	}
	out := make([]Finding, len(gaps))
	for i, g := range gaps {
		whats := g.whats
		if len(whats) > maxLossesPerCause {
			whats = append(whats[:maxLossesPerCause:maxLossesPerCause], fmt.Sprintf("and %d more such losses", len(g.whats)-maxLossesPerCause))
		}
		out[i] = finding(RuleRoutePropagation, nodeRef(g.subject), "", strings.Join(whats, "; ")+": "+g.cause)
	}
	return out
}

// diagnose names the likeliest cause of a gap from class x to class y in family f, and the
// fix. When the cause is nodes without any session, it returns them too.
func (e *Engine) diagnose(s *model.Snapshot, f bgp.Family, x, y int, rejected func(bgp.Family, int) []bgp.Rejection) (string, []string) {
	a := s.Analysis
	cx, cy := &a.Classes[x], &a.Classes[y]
	for _, c := range []int{x, y} {
		if a.Isolated(c) {
			names := sorted(members(s, c))
			if s.State.Mesh() {
				return fmt.Sprintf("%s (with a cluster ID, out of the mesh) %s no BGP session: create a BGPPeer that selects %s", nameList(names), hasHave(names), themIt(names)), names
			}
			return fmt.Sprintf("with the mesh off %s %s no BGP session: create a BGPPeer that selects %s, e.g. nodeSelector: \"!has(%s)\", peerSelector: \"has(%s)\"", nameList(names), hasHave(names), themIt(names), e.cfg.ReflectorLabel, e.cfg.ReflectorLabel), names
		}
	}
	if cause := e.routeCause(s, f, x, y, rejected); cause != "" {
		return cause, nil
	}
	reflectorsFor := func(c int) []string {
		if a.Classes[c].ClusterID != "" {
			return members(s, c)
		}
		return reflectorsOf(s, c)
	}
	rx, ry := reflectorsFor(x), reflectorsFor(y)
	all := slices.Concat(rx, ry)
	slices.Sort(all)
	all = slices.Compact(all)
	if id := sharedClusterID(s, all); id != "" && len(all) >= 2 {
		if cx.ClusterID != "" && cy.ClusterID != "" {
			return fmt.Sprintf("reflectors of cluster ID %s (%s) learn one another's routes only over a direct session (what one reflects, the others keep but never pass on to their clients); if no BGPPeer connects them, add one with nodeSelector and peerSelector \"has(%s)\"", id, nameList(all), e.cfg.ReflectorLabel), nil
		}
		return fmt.Sprintf("reflectors %s share cluster ID %s: what one reflects, the others keep but never pass on to their clients: peer every client with every reflector of %s, or give each reflector its own cluster ID (projectcalico/calico#2735)", nameList(all), id, id), nil
	}
	if cx.ClusterID == "" && cy.ClusterID == "" {
		if len(rx) > 0 && len(ry) > 0 {
			return fmt.Sprintf("their reflectors (%s) do not pass routes to each other: peer the reflectors with each other, e.g. nodeSelector and peerSelector \"has(%s)\"", nameList(all), e.cfg.ReflectorLabel), nil
		}
		return "a node without a cluster ID does not re-advertise routes learned over iBGP: peer both with the same reflectors", nil
	}
	return "no chain of BGP sessions and route reflection carries them (a route crosses iBGP only through a reflector, and an AS appears once per path): check the BGPPeers, cluster IDs and AS numbers", nil
}

// sharedClusterID returns the cluster ID all the named reflectors share ("" if they differ).
func sharedClusterID(s *model.Snapshot, names []string) string {
	id := ""
	for _, n := range names {
		c := s.Analysis.Class(n)
		if c < 0 {
			return ""
		}
		cid := s.Analysis.Classes[c].ClusterID
		if id != "" && cid != id {
			return ""
		}
		id = cid
	}
	return id
}
