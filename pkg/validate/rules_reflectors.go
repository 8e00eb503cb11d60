package validate

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

var clusterIDConsistencyRule = Rule{
	ID: RuleClusterIDConsistency, Default: Deny,
	Summary: "reflectors sharing a cluster ID while a client peers with only some of them (calico#2735); `clusterIDPolicy: shared/unique`",
	Doc:     "reflectors that share a cluster ID while a client peers with only some of them: a reflector keeps what another of the same ID reflects but never passes it on to its clients (projectcalico/calico#2735); with `clusterIDPolicy: shared` or `unique`, IDs that break the policy",
	checks: []checker{
		check[string]{checkOpts: checkOpts{model: true}, problems: partialClusterPeerings, render: renderPartialClusterPeerings},
		check[Finding]{checkOpts: checkOpts{declared: true}, problems: clusterIDPolicyBreaches, render: renderClusterIDPolicyBreaches},
	},
	breaks: true,
}

// partialClusterPeerings: per client class, the cluster IDs whose reflectors it peers with
// only in part (the projectcalico/calico#2735 partition); key and data: the cluster ID.
func partialClusterPeerings(_ *Engine, s *model.Snapshot) []problem[string] {
	a := s.Analysis
	// The reflector classes by cluster ID, the IDs in order.
	type shared struct {
		cid     string
		classes []int
	}
	var ids []shared
	for _, d := range s.ReflectorClasses() {
		cid := a.Classes[d].ClusterID
		i := slices.IndexFunc(ids, func(g shared) bool { return g.cid == cid })
		if i < 0 {
			i = len(ids)
			ids = append(ids, shared{cid: cid})
		}
		ids[i].classes = append(ids[i].classes, d)
	}
	slices.SortFunc(ids, func(x, y shared) int { return strings.Compare(x.cid, y.cid) })
	var out []problem[string]
	for c := range a.Classes {
		if a.Classes[c].ClusterID != "" {
			continue
		}
		for _, g := range ids {
			peered := 0
			for _, d := range g.classes {
				if a.Peered(c, d) {
					peered++
				}
			}
			if peered > 0 && peered < len(g.classes) {
				out = append(out, problem[string]{key: g.cid, classes: []int{c}, data: g.cid})
			}
		}
	}
	return out
}

func renderPartialClusterPeerings(_ *judgment, s *model.Snapshot, parts []part[string]) []Finding {
	byID := reflectorsByClusterID(s)
	// One finding per client class and cluster ID, whatever the classes its members had before.
	type at struct {
		class int
		cid   string
	}
	var order []at
	nodes := map[at][]string{}
	for _, p := range parts {
		k := at{p.classes[0], p.data}
		if _, ok := nodes[k]; !ok {
			order = append(order, k)
		}
		nodes[k] = append(nodes[k], p.members[0]...)
	}
	var out []Finding
	for _, k := range order {
		ns, rr := sorted(nodes[k]), byID[k.cid]
		out = append(out, finding(RuleClusterIDConsistency, nodeRef(ns[0]), "",
			fmt.Sprintf("%s %s with only some of the reflectors that share cluster ID %s (%s): a reflector keeps what another of the same ID reflects but never passes it on to its clients, so clients on different reflectors lose each other's routes (projectcalico/calico#2735); peer every client with every reflector of the cluster ID, or give each reflector its own ID",
				nameList(ns), verb(ns, "peers", "peer"), k.cid, nameList(rr))))
	}
	return out
}

// clusterIDPolicyBreaches: with clusterIDPolicy shared, more than one cluster ID (key
// "shared"); with unique, each ID several reflectors share (key "unique|<id>"). Its problems
// carry their finding (data): there is nothing a judgment leaves out of one.
func clusterIDPolicyBreaches(e *Engine, s *model.Snapshot) []problem[Finding] {
	if e.cfg.ClusterIDPolicy == ClusterIDAny {
		return nil
	}
	byID := reflectorsByClusterID(s)
	ids := slices.Sorted(maps.Keys(byID))
	var out []problem[Finding]
	switch e.cfg.ClusterIDPolicy {
	case ClusterIDShared:
		if len(ids) > 1 {
			out = append(out, problem[Finding]{key: "shared", data: finding(RuleClusterIDConsistency, nodeRef(byID[ids[0]][0]), "",
				fmt.Sprintf("clusterIDPolicy is shared but reflectors use %d cluster IDs (%s): give them all the same one", len(ids), nameList(ids)))})
		}
	case ClusterIDUnique:
		for _, id := range ids {
			if rs := byID[id]; len(rs) >= 2 {
				out = append(out, problem[Finding]{key: "unique|" + id, data: finding(RuleClusterIDConsistency, nodeRef(rs[0]), "",
					fmt.Sprintf("clusterIDPolicy is unique but %s share cluster ID %s: give each reflector its own", nameList(rs), id))})
			}
		}
	}
	return out
}

func renderClusterIDPolicyBreaches(_ *judgment, _ *model.Snapshot, parts []part[Finding]) []Finding {
	out := make([]Finding, len(parts))
	for i, p := range parts {
		out[i] = p.data
	}
	return out
}

// reflectorsByClusterID returns the reflectors (sorted) by cluster ID.
func reflectorsByClusterID(s *model.Snapshot) map[string][]string {
	out := map[string][]string{}
	for c := range s.Analysis.Classes {
		if cid := s.Analysis.Classes[c].ClusterID; cid != "" {
			out[cid] = append(out[cid], members(s, c)...)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

var meshDisableRule = Rule{
	ID: RuleMeshDisable, Default: Deny,
	Summary: "mesh turned off with fewer than `minReflectors` Ready reflectors",
	Doc:     "switching the mesh off with fewer than `minReflectors` (2) Ready reflectors (calico#6922, #9259)",
	checks: []checker{check[[]string]{
		// Judged when the mesh is turned off (and in the audit), not on every later change.
		checkOpts: checkOpts{applies: func(j *judgment) bool { return j.whole }},
		problems:  tooFewReflectors,
		render:    renderTooFewReflectors,
	}},
}

// tooFewReflectors: the mesh is off with fewer than minReflectors Ready reflectors (data:
// those there are).
func tooFewReflectors(e *Engine, s *model.Snapshot) []problem[[]string] {
	if s.State.Mesh() || !routesViaBGP(s) {
		return nil // VXLAN pools only: felix routes the pods, BGP carries none of it
	}
	var ready []string
	for c := range s.Analysis.Classes {
		if s.Analysis.Classes[c].ClusterID != "" {
			ready = append(ready, members(s, c)...)
		}
	}
	if len(ready) >= e.cfg.MinReflectors {
		return nil
	}
	return []problem[[]string]{{data: sorted(ready)}}
}

func renderTooFewReflectors(j *judgment, s *model.Snapshot, parts []part[[]string]) []Finding {
	ready := parts[0].data
	have := "no Ready route reflector"
	if len(ready) > 0 {
		have = fmt.Sprintf("only %d Ready route reflector (%s)", len(ready), nameList(ready))
	}
	state := "is"
	if j.ch != nil {
		state = "would be"
	}
	return []Finding{finding(RuleMeshDisable, defaultConfigRef(s), meshPath,
		fmt.Sprintf("the node-to-node mesh %s off with %s; at least %d are needed: give nodes a routeReflectorClusterID and the %s label, create the BGPPeers, then disable the mesh%s", state, have, j.e.cfg.MinReflectors, j.e.cfg.ReflectorLabel, lostReflectors(s)))}
}

// lostReflectors names the nodes that hold a cluster ID but take no part in BGP (NotReady, or
// without an address), as a sentence to append ("" when there are none).
func lostReflectors(s *model.Snapshot) string {
	var lost []string
	for _, name := range s.State.NodeNames() {
		n := s.State.Node(name)
		if !n.IsReflector() || s.Analysis.Class(name) >= 0 {
			continue
		}
		why := "NotReady"
		if n.Ready == nil || *n.Ready {
			why = "no BGP address"
		}
		lost = append(lost, fmt.Sprintf("%s (%s)", name, why))
	}
	if len(lost) == 0 {
		return ""
	}
	return fmt.Sprintf("; lost %s: %s: bring %s back or replace %s (give another node the cluster ID and the reflector label)",
		verb(lost, "reflector", "reflectors"), nameList(lost), themIt(lost), themIt(lost))
}

var reflectorWithoutPeersRule = Rule{
	ID: RuleReflectorWithoutPeers, Default: Warn,
	Summary: "mesh on: a node holds a cluster ID but has no session yet (the migration's middle step)",
	Doc:     "while the mesh is on, a node that holds a cluster ID but has no session yet (it left the mesh): the normal middle step of the migration, said out loud",
	checks:  []checker{check[struct{}]{checkOpts: checkOpts{model: true}, problems: isolatedReflectors, render: renderIsolatedReflectors}},
}

// isolatedReflector: while the mesh is on, a reflector with no session is the normal middle
// step of the migration, reported as reflector-without-peers instead of route-propagation.
func isolatedReflector(s *model.Snapshot, c int) bool {
	return s.State.Mesh() && s.Analysis.Classes[c].ClusterID != "" && s.Analysis.Isolated(c)
}

func isolatedReflectors(_ *Engine, s *model.Snapshot) []problem[struct{}] {
	if !s.State.Mesh() {
		return nil // see isolatedReflector
	}
	var out []problem[struct{}]
	for _, c := range s.ReflectorClasses() {
		if isolatedReflector(s, c) {
			out = append(out, problem[struct{}]{classes: []int{c}})
		}
	}
	return out
}

func renderIsolatedReflectors(_ *judgment, s *model.Snapshot, parts []part[struct{}]) []Finding {
	var out []Finding
	for _, p := range parts {
		for _, name := range p.members[0] {
			n := s.State.Node(name)
			out = append(out, finding(RuleReflectorWithoutPeers, nodeRef(name), n.FieldPath("routeReflectorClusterID"),
				fmt.Sprintf("node %s holds cluster ID %s, so it left the node-to-node mesh, and no BGPPeer selects it: it exchanges no routes until you create the peerings", name, n.ClusterID)))
		}
	}
	return out
}

var reflectorRedundancyRule = Rule{
	ID: RuleReflectorRedundancy, Default: Deny,
	Summary: "mesh off: a client attached to fewer than `minReflectors` reflectors; a single reflector whose loss alone cuts routes",
	Doc:     "with the mesh off, clients attached to fewer than `minReflectors` live reflectors (names the reflectors lost: NotReady, no address); and a single reflector whose loss alone would cut routes, e.g. the only peering between two zones' reflectors (checked in the audit, when the mesh is turned off, and for changes to BGPPeers, the BGPConfiguration or a reflector)",
	checks: []checker{
		check[[]string]{checkOpts: checkOpts{model: true}, problems: clientsWithFewReflectors, render: renderClientsWithFewReflectors},
		check[singlePoint]{
			// What-ifs are costly: only where the whole topology is judged, or for a change that
			// can alter how routes are reflected, and when no client lacks reflectors already.
			checkOpts: checkOpts{
				applies: func(j *judgment) bool {
					return j.e.cfg.MinReflectors >= 2 && (j.whole || touchesReflection(*j.ch))
				},
				unless:       []string{RuleReflectorRedundancy},
				singlePoints: true,
			},
			problems: singlePointsOfFailure,
			render:   renderSinglePointsOfFailure,
		},
	},
	breaks: true,
}

// singlePoint is what a single point of failure takes away: the nodes that would lose routes;
// or, with notChecked, that not every what-if was asked within the budget.
type singlePoint struct {
	lost       []string
	notChecked bool
}

// reflectorsOf returns, sorted, the reflectors client class c has sessions with in its AS (nil
// for a class of reflectors)
// (bgp.Analysis.ReflectorsOf over the reflector classes only).
func reflectorsOf(s *model.Snapshot, c int) []string {
	a := s.Analysis
	if a.Classes[c].ClusterID != "" {
		return nil
	}
	var out []string
	for _, d := range s.ReflectorClasses() {
		if clientOf(a, c, d) {
			out = append(out, members(s, d)...)
		}
	}
	sort.Strings(out)
	return out
}

// clientOf reports whether the members of client class c are route-reflector clients of the
// members of reflector class d: sessions in the same AS.
func clientOf(a *bgp.Analysis, c, d int) bool {
	return a.Classes[d].AS == a.Classes[c].AS && a.Peered(c, d)
}

// fewReflectors: the reflectors of a client class that has some but fewer than
// minReflectors (nil otherwise), for the caller that knows the mesh is off (asked once, not
// per class: State.Mesh walks the state's overlays).
func (e *Engine) fewReflectors(s *model.Snapshot, c int) []string {
	if s.Analysis.Classes[c].ClusterID != "" {
		return nil
	}
	// Count first: most clients have enough, and their names are not needed.
	a, n := s.Analysis, 0
	for _, d := range s.ReflectorClasses() {
		if clientOf(a, c, d) {
			n += len(a.Classes[d].Members)
		}
	}
	if n == 0 || n >= e.cfg.MinReflectors {
		return nil
	}
	return reflectorsOf(s, c)
}

func clientsWithFewReflectors(e *Engine, s *model.Snapshot) []problem[[]string] {
	if s.State.Mesh() {
		return nil // see fewReflectors
	}
	var out []problem[[]string]
	for c := range s.Analysis.Classes {
		if rs := e.fewReflectors(s, c); rs != nil {
			out = append(out, problem[[]string]{classes: []int{c}, data: rs})
		}
	}
	return out
}

func renderClientsWithFewReflectors(j *judgment, s *model.Snapshot, parts []part[[]string]) []Finding {
	// One finding per client class, whatever the classes its members had before.
	var order []int
	nodes := map[int][]string{}
	reflectors := map[int][]string{}
	for _, p := range parts {
		c := p.classes[0]
		if _, ok := nodes[c]; !ok {
			order = append(order, c)
		}
		nodes[c] = append(nodes[c], p.members[0]...)
		reflectors[c] = p.data
	}
	min := j.e.cfg.MinReflectors
	var out []Finding
	for _, c := range order {
		ns, rs := sorted(nodes[c]), reflectors[c]
		out = append(out, finding(RuleReflectorRedundancy, nodeRef(ns[0]), "",
			fmt.Sprintf("%s would peer with only %d route reflector (%s) while %d are required: if it fails, %s %s all pod routes (projectcalico/calico#6922); keep at least %d reflectors selected by the BGPPeers%s",
				nameList(ns), len(rs), nameList(rs), min, theyIt(ns), verb(ns, "loses", "lose"), min, lostReflectors(s))))
	}
	return out
}

// singlePointsOfFailure: with the mesh off, a reflector class whose member's loss alone would
// cut routes that flow now, although every client has enough reflectors (say, the only
// peering between two zones' reflectors); data: the nodes that would lose routes. One member
// per class is tried: the others behave the same. The what-ifs run in parallel.
func singlePointsOfFailure(e *Engine, s *model.Snapshot) []problem[singlePoint] {
	if s.State.Mesh() || e.cfg.MinReflectors < 2 {
		return nil // with minReflectors 1 the user accepts single reflectors
	}
	var classes []int
	for c := range s.Analysis.Classes {
		if cl := &s.Analysis.Classes[c]; cl.ClusterID != "" && len(cl.Members) > 0 {
			classes = append(classes, c)
		}
	}
	gaps, checked := s.Analysis.LostIfDownEach(classes, serialWhatIfSteps)
	var out []problem[singlePoint]
	for k, c := range classes {
		if lost := lostWithout(s, c, gaps[k]); len(lost) > 0 {
			out = append(out, problem[singlePoint]{classes: []int{c}, data: singlePoint{lost: lost}})
		}
	}
	if slices.Contains(checked, false) {
		out = append(out, problem[singlePoint]{key: "not checked", data: singlePoint{notChecked: true}})
	}
	return out
}

// serialWhatIfSteps is how many steps (state graph edges pushed, about 30 ns each) the
// what-ifs of a decision spend on its own goroutine before the rest run in parallel
// (bgp.Analysis.LostIfDownEach).
const serialWhatIfSteps = 5000

// lostWithout returns, sorted, the nodes that lose some other node's routes when a member of
// reflector class c fails (gaps: what LostIfDown found), routes that flow while it is up.
func lostWithout(s *model.Snapshot, c int, gaps []bgp.Gap) []string {
	a := s.Analysis
	failed := a.Classes[c].Members[0]
	affected := map[string]bool{}
	for _, g := range gaps {
		if a.Broken(g.From, g.To) {
			continue // already broken in the other family
		}
		for _, m := range append(slices.Clone(a.Classes[g.From].Members), a.Classes[g.To].Members...) {
			if m != failed {
				affected[s.Topology.Nodes[m].Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(affected))
}

func renderSinglePointsOfFailure(_ *judgment, s *model.Snapshot, parts []part[singlePoint]) []Finding {
	var out []Finding
	seen := map[int]bool{}
	for _, p := range parts {
		if p.data.notChecked {
			out = append(out, unchecked(finding(RuleReflectorRedundancy, defaultConfigRef(s), "",
				fmt.Sprintf("single points of failure were not all checked: asking what each reflector's failure would cut took more than rrguard's budget (%d reflector classes); the other rules ran", len(s.ReflectorClasses())))))
			continue
		}
		c := p.classes[0]
		if seen[c] {
			continue // one finding per class of reflectors
		}
		seen[c] = true
		lost := p.members[0][0]
		out = append(out, finding(RuleReflectorRedundancy, nodeRef(lost), s.State.Node(lost).FieldPath("routeReflectorClusterID"),
			fmt.Sprintf("reflector %s is a single point of failure: if it fails, %s lose some of one another's pod routes; give those routes a second path (peer more reflectors with each other, or each client with more reflectors)",
				lost, nameList(p.data.lost))))
	}
	return out
}

// touchesReflection reports whether a change can alter how routes are reflected: a BGPPeer,
// the BGPConfiguration, or a Node that is or was a reflector.
func touchesReflection(ch model.Change) bool {
	for _, o := range []*calico.Object{ch.Object, ch.Old} {
		switch {
		case o == nil:
		case o.Peer != nil, o.Config != nil:
			return true
		case o.Node != nil && o.Node.IsReflector():
			return true
		}
	}
	return false
}

var reflectorRemovalRule = Rule{
	ID: RuleReflectorRemoval, Default: Deny,
	Summary: "the removal (cluster ID cleared, reflector deleted, peer deleted) behind such a break",
	Doc:     "the removal behind a break (a cluster ID cleared, a reflector Node deleted, a BGPPeer deleted or changed): add the replacement first",
	change:  removal,
}

// removal explains a change that takes away a reflector or a BGPPeer and thereby breaks the
// topology: the findings say what breaks, this one says which removal did it.
func removal(e *Engine, ch model.Change, found []Finding) *Finding {
	// A finding that says something could not be checked (warnAtMost) is no break.
	broken := slices.ContainsFunc(found, func(f Finding) bool {
		r := RuleByID(f.Rule)
		return r != nil && r.breaks && e.cfg.ActionFor(f.Rule) == Deny && !f.warnAtMost
	})
	old := ch.Old
	if !broken || old == nil {
		return nil
	}
	var what string
	switch {
	case old.Node != nil && old.Node.IsReflector():
		switch {
		case ch.Object == nil:
			what = fmt.Sprintf("deleting reflector node %s", old.Name)
		case !ch.Object.Node.IsReflector():
			what = fmt.Sprintf("clearing the cluster ID of reflector %s", old.Name)
		default:
			what = fmt.Sprintf("changing reflector %s", old.Name)
		}
	case old.Peer != nil && ch.Object == nil:
		what = fmt.Sprintf("deleting BGPPeer %s", old.Name)
	case old.Peer != nil:
		what = fmt.Sprintf("changing BGPPeer %s", old.Name)
	default:
		return nil
	}
	f := finding(RuleReflectorRemoval, refOf(old), "",
		fmt.Sprintf("%s breaks the route-reflector topology (see the other findings): when a reflector or its peering must go, first add and peer its replacement (at least %d reflectors per client)", what, e.cfg.MinReflectors))
	return &f
}
