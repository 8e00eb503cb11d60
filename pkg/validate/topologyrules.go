package validate

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
)

// topologyFindings asks the questions of the whole topology. With a base snapshot, only what
// is new compared to base is reported.
func (e *Engine) topologyFindings(s, base *Snapshot) []Finding {
	var out []Finding
	out = append(out, e.routePropagation(s, base)...)
	out = append(out, e.reflectorWithoutPeers(s, base)...)
	redundancy := e.redundancy(s, base)
	out = append(out, redundancy...)
	if base == nil && len(redundancy) == 0 {
		out = append(out, e.singlePoints(s)...)
	}
	out = append(out, e.clusterIDConsistency(s, base)...)
	out = append(out, e.asMismatch(s, base)...)
	out = append(out, e.selectorsMatchNothing(s, base)...)
	out = append(out, e.peerTargetsNonReflector(s, base)...)
	out = append(out, e.sessionOneSided(s, base)...)
	return out
}

// sessionOneSided reports sessions that one end configures and the other does not, per
// family and pair of classes (in admission: the pairs that were not one-sided before).
func (e *Engine) sessionOneSided(s, base *Snapshot) []Finding {
	a := s.Analysis
	var out []Finding
	for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
		for _, pair := range a.OneSidedPairs(f) {
			from, to := members(s, pair[0]), members(s, pair[1])
			if base != nil {
				if bx, by := base.Analysis.Class(from[0]), base.Analysis.Class(to[len(to)-1]); bx >= 0 && by >= 0 && base.Analysis.OneSided(f, bx, by) {
					continue
				}
			}
			sort.Strings(from)
			sort.Strings(to)
			out = append(out, Finding{
				Rule: RuleSessionOneSided, Object: nodeRef(from[0]),
				Message: fmt.Sprintf("%s %s a BGP session (%s) to %s, which %s not configure it back with the AS and port in use: the session stays Idle and carries no routes. Check the BGPPeers between them: reversePeering: Manual needs a BGPPeer for the other side; a peerIP's asNumber and port must be the node's; a localASNumber other than the node's AS is refused",
					nameList(from), verb(from, "configures", "configure"), f, nameList(to), verb(to, "does", "do")),
				key: RuleSessionOneSided + "|" + f.String() + "|" + strings.Join(from, ",") + ">" + strings.Join(to, ","),
			})
		}
	}
	return out
}

// members returns the names of the nodes of class c.
func members(s *Snapshot, c int) []string {
	m := s.Analysis.Classes[c].Members
	out := make([]string, len(m))
	for i, idx := range m {
		out[i] = s.Topology.Nodes[idx].Name
	}
	return out
}

// nameList renders up to four names and how many more.
func nameList(names []string) string {
	const show = 4
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s (+%d more)", strings.Join(names[:show], ", "), len(names)-show)
}

// groupByClass splits node names by their class in s (-1: takes no part or absent).
func groupByClass(s *Snapshot, names []string) map[int][]string {
	out := map[int][]string{}
	for _, n := range names {
		c := s.Analysis.Class(n)
		out[c] = append(out[c], n)
	}
	return out
}

// isolatedReflector: while the mesh is on, a reflector with no session is the normal middle
// step of the migration, reported as reflector-without-peers instead of route-propagation.
func isolatedReflector(s *Snapshot, c int) bool {
	return s.State.Mesh() && s.Analysis.Classes[c].ClusterID != "" && s.Analysis.Isolated(c)
}

func (e *Engine) routePropagation(s, base *Snapshot) []Finding {
	a := s.Analysis
	var undecided []Finding
	for _, u := range a.Undecided {
		// The simulation stopped at its budget (see bgp.Budget): say so, never hang and never
		// refuse on a guess. The other rules still ran.
		undecided = append(undecided, Finding{Rule: RuleRoutePropagation, Object: ObjectRef{Kind: calico.KindBGPConfiguration, Name: calico.DefaultConfigName},
			Message: fmt.Sprintf("%s route propagation was not checked: %s; rrguard cannot tell whether every node learns every other node's %s pod routes (the other rules ran). This takes many cluster IDs each shared by several reflectors, or many ASes of several nodes, peered in many ways; simplify the peering or check the paths with rrguard sessions",
				u.Family, u.Reason, u.Family),
			key: RuleRoutePropagation + "|undecided|" + u.Family.String(), warnAtMost: true})
	}
	type block struct {
		from, to []string
		family   bgp.Family
		fc, tc   int
	}
	var blocks []block
	for _, g := range a.Gaps {
		if isolatedReflector(s, g.From) || isolatedReflector(s, g.To) {
			continue
		}
		from, to := members(s, g.From), members(s, g.To)
		if base == nil {
			blocks = append(blocks, block{from, to, g.Family, g.From, g.To})
			continue
		}
		fromGroups, toGroups := groupByClass(base, from), groupByClass(base, to)
		for bf, fs := range fromGroups {
			for bt, ts := range toGroups {
				if bf >= 0 && bt >= 0 && base.Analysis.Broken(bf, bt) {
					continue // already broken before the change
				}
				if len(fs) == 1 && len(ts) == 1 && fs[0] == ts[0] {
					continue
				}
				blocks = append(blocks, block{fs, ts, g.Family, g.From, g.To})
			}
		}
	}
	sort.Slice(blocks, func(i, j int) bool {
		if blocks[i].to[0] != blocks[j].to[0] {
			return blocks[i].to[0] < blocks[j].to[0]
		}
		return blocks[i].from[0] < blocks[j].from[0]
	})
	// One finding per cause: the blocks a cause explains are listed together.
	var out []Finding
	byCause := map[string]int{}
	for _, b := range blocks {
		sort.Strings(b.from)
		sort.Strings(b.to)
		cause, isolated := e.diagnose(s, b.fc, b.tc)
		var what string
		subject := b.to[0]
		switch {
		case isolated != nil:
			what = fmt.Sprintf("%s would exchange no %s pod routes with any other node", nameList(isolated), b.family)
			subject = isolated[0]
		case strings.Join(b.from, ",") == strings.Join(b.to, ","):
			what = fmt.Sprintf("%s would not learn one another's %s pod routes", nameList(b.to), b.family)
		default:
			what = fmt.Sprintf("%s would not learn the %s pod routes of %s", nameList(b.to), b.family, nameList(b.from))
		}
		key := RuleRoutePropagation + "|" + strings.Join(b.from, ",") + ">" + strings.Join(b.to, ",")
		if i, ok := byCause[cause]; ok {
			if !strings.Contains(out[i].Message, what) {
				out[i].Message = strings.TrimSuffix(out[i].Message, ": "+cause) + "; " + what + ": " + cause
			}
			out[i].key += "|" + key
			continue
		}
		byCause[cause] = len(out)
		out = append(out, Finding{Rule: RuleRoutePropagation, Object: nodeRef(subject), Message: what + ": " + cause, key: key})
	}
	return append(undecided, out...)
}

func hasHave(names []string) string { return verb(names, "has", "have") }

// verb picks the singular or plural form for a list of names.
func verb(names []string, one, many string) string {
	if len(names) == 1 {
		return one
	}
	return many
}

func theyIt(names []string) string {
	if len(names) == 1 {
		return "it"
	}
	return "they"
}

func themIt(names []string) string {
	if len(names) == 1 {
		return "it"
	}
	return "them"
}

// diagnose names the likeliest cause of a gap from class x to class y, and the fix.
// When the cause is nodes without any session, it returns them too.
func (e *Engine) diagnose(s *Snapshot, x, y int) (string, []string) {
	a := s.Analysis
	cx, cy := &a.Classes[x], &a.Classes[y]
	for _, c := range []int{x, y} {
		if a.Isolated(c) {
			names := members(s, c)
			sort.Strings(names)
			if s.State.Mesh() {
				return fmt.Sprintf("%s (with a cluster ID, out of the mesh) %s no BGP session: create a BGPPeer that selects %s", nameList(names), hasHave(names), themIt(names)), names
			}
			return fmt.Sprintf("with the mesh off %s %s no BGP session: create a BGPPeer that selects %s, e.g. nodeSelector: \"!has(%s)\", peerSelector: \"has(%s)\"", nameList(names), hasHave(names), themIt(names), e.cfg.ReflectorLabel, e.cfg.ReflectorLabel), names
		}
	}
	reflectorsOf := func(c int) []string {
		if a.Classes[c].ClusterID != "" {
			return members(s, c)
		}
		return a.ReflectorsOf(c)
	}
	rx, ry := reflectorsOf(x), reflectorsOf(y)
	all := append(slices.Clone(rx), ry...)
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
func sharedClusterID(s *Snapshot, names []string) string {
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

func (e *Engine) reflectorWithoutPeers(s, base *Snapshot) []Finding {
	var out []Finding
	for c := range s.Analysis.Classes {
		if !isolatedReflector(s, c) {
			continue
		}
		for _, name := range members(s, c) {
			if base != nil {
				if bc := base.Analysis.Class(name); bc >= 0 && isolatedReflector(base, bc) {
					continue
				}
			}
			n := s.State.Node(name)
			out = append(out, Finding{
				Rule: RuleReflectorWithoutPeers, Object: nodeRef(name), Field: n.FieldPath("routeReflectorClusterID"),
				Message: fmt.Sprintf("node %s holds cluster ID %s, so it left the node-to-node mesh, and no BGPPeer selects it: it exchanges no routes until you create the peerings", name, n.ClusterID),
				key:     RuleReflectorWithoutPeers + "|" + name,
			})
		}
	}
	return out
}

func (e *Engine) meshDisable(s *Snapshot, admission bool) []Finding {
	var ready []string
	for c := range s.Analysis.Classes {
		if s.Analysis.Classes[c].ClusterID != "" {
			ready = append(ready, members(s, c)...)
		}
	}
	if len(ready) >= e.cfg.MinReflectors {
		return nil
	}
	sort.Strings(ready)
	have := "no Ready route reflector"
	if len(ready) > 0 {
		have = fmt.Sprintf("only %d Ready route reflector (%s)", len(ready), nameList(ready))
	}
	ref := ObjectRef{Kind: calico.KindBGPConfiguration, Name: calico.DefaultConfigName}
	if d := s.State.Default(); d != nil {
		ref.Group = d.Group
	}
	return []Finding{{
		Rule: RuleMeshDisable, Object: ref, Field: "spec.nodeToNodeMeshEnabled",
		Message: fmt.Sprintf("the node-to-node mesh %s off with %s; at least %d are needed: give nodes a routeReflectorClusterID and the %s label, create the BGPPeers, then disable the mesh%s", map[bool]string{true: "would be", false: "is"}[admission], have, e.cfg.MinReflectors, e.cfg.ReflectorLabel, lostReflectors(s)),
		key:     RuleMeshDisable,
	}}
}

// lostReflectors names the nodes that hold a cluster ID but take no part in BGP (NotReady, or
// without an address), as a sentence to append ("" when there are none).
func lostReflectors(s *Snapshot) string {
	var lost []string
	for _, name := range s.State.NodeNames() {
		n := s.State.Node(name)
		m := n.Model()
		if m.ClusterID == "" || s.Analysis.Class(name) >= 0 {
			continue
		}
		why := "NotReady"
		if m.Ready {
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

// clientWithFewReflectors: with the mesh off, a client that has some but too few reflectors.
func (e *Engine) fewReflectors(s *Snapshot, c int) []string {
	if s.State.Mesh() || s.Analysis.Classes[c].ClusterID != "" {
		return nil
	}
	rs := s.Analysis.ReflectorsOf(c)
	if len(rs) == 0 || len(rs) >= e.cfg.MinReflectors {
		return nil
	}
	return rs
}

func (e *Engine) redundancy(s, base *Snapshot) []Finding {
	var out []Finding
	for c := range s.Analysis.Classes {
		rs := e.fewReflectors(s, c)
		if rs == nil {
			continue
		}
		var nodes []string
		for _, name := range members(s, c) {
			if base != nil {
				if bc := base.Analysis.Class(name); bc >= 0 && e.fewReflectors(base, bc) != nil {
					continue
				}
			}
			nodes = append(nodes, name)
		}
		if len(nodes) == 0 {
			continue
		}
		sort.Strings(nodes)
		out = append(out, Finding{
			Rule: RuleReflectorRedundancy, Object: nodeRef(nodes[0]),
			Message: fmt.Sprintf("%s would peer with only %d route reflector (%s) while %d are required: if it fails, %s %s all pod routes (projectcalico/calico#6922); keep at least %d reflectors selected by the BGPPeers%s",
				nameList(nodes), len(rs), nameList(rs), e.cfg.MinReflectors, theyIt(nodes), verb(nodes, "loses", "lose"), e.cfg.MinReflectors, lostReflectors(s)),
			key: RuleReflectorRedundancy + "|" + strings.Join(nodes, ","),
		})
	}
	return out
}

// singlePoints reports, with the mesh off, a reflector whose loss alone would cut routes that
// flow now, although every client has enough reflectors (say, the only peering between two
// zones' reflectors). One member per class of reflectors is tried: the others behave the same.
// It runs where the whole topology is judged (the audit, and turning the mesh off).
func (e *Engine) singlePoints(s *Snapshot) []Finding {
	if s.State.Mesh() || e.cfg.MinReflectors < 2 {
		return nil // with minReflectors 1 the user accepts single reflectors
	}
	// One what-if per reflector class, run in parallel: each is a fresh propagation.
	var classes []int
	for c := range s.Analysis.Classes {
		if cl := &s.Analysis.Classes[c]; cl.ClusterID != "" && len(cl.Members) > 0 {
			classes = append(classes, c)
		}
	}
	affected := make([][]string, len(classes))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(runtime.GOMAXPROCS(0), len(classes)) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(classes) {
					return
				}
				affected[k] = lostWithout(s, classes[k])
			}
		})
	}
	wg.Wait()
	var out []Finding
	for k, c := range classes {
		if len(affected[k]) == 0 {
			continue
		}
		lost := s.Topology.Nodes[s.Analysis.Classes[c].Members[0]]
		out = append(out, Finding{
			Rule: RuleReflectorRedundancy, Object: nodeRef(lost.Name), Field: s.State.Node(lost.Name).FieldPath("routeReflectorClusterID"),
			Message: fmt.Sprintf("reflector %s is a single point of failure: if it fails, %s lose some of one another's pod routes; give those routes a second path (peer more reflectors with each other, or each client with more reflectors)",
				lost.Name, nameList(affected[k])),
			key: RuleReflectorRedundancy + "|single|" + lost.Name,
		})
	}
	return out
}

// lostWithout returns, sorted, the nodes that lose some other node's routes when a member of
// reflector class c fails, routes that flow while it is up.
func lostWithout(s *Snapshot, c int) []string {
	a := s.Analysis
	lost := a.Classes[c].Members[0]
	affected := map[string]bool{}
	for _, g := range a.LostIfDown(c) {
		if a.Broken(g.From, g.To) {
			continue // already broken in the other family
		}
		for _, m := range append(slices.Clone(a.Classes[g.From].Members), a.Classes[g.To].Members...) {
			if m != lost {
				affected[s.Topology.Nodes[m].Name] = true
			}
		}
	}
	return sortedKeys(affected)
}

// partialClusters returns, for members of client class c, the cluster IDs whose reflectors
// it peers with only in part (the projectcalico/calico#2735 partition).
func partialClusters(s *Snapshot, c int) []string {
	a := s.Analysis
	if a.Classes[c].ClusterID != "" {
		return nil
	}
	some, all := map[string]bool{}, map[string]bool{}
	for d := range a.Classes {
		cid := a.Classes[d].ClusterID
		if cid == "" {
			continue
		}
		linked := a.Session(bgp.IPv4, c, d) || a.Session(bgp.IPv6, c, d)
		if _, seen := all[cid]; !seen {
			all[cid] = true
		}
		if linked {
			some[cid] = true
		} else {
			all[cid] = false
		}
	}
	var out []string
	for cid := range some {
		if !all[cid] {
			out = append(out, cid)
		}
	}
	sort.Strings(out)
	return out
}

func (e *Engine) clusterIDConsistency(s, base *Snapshot) []Finding {
	var out []Finding
	a := s.Analysis
	for c := range a.Classes {
		cids := partialClusters(s, c)
		for _, cid := range cids {
			var nodes []string
			for _, name := range members(s, c) {
				if base != nil {
					if bc := base.Analysis.Class(name); bc >= 0 && contains(partialClusters(base, bc), cid) {
						continue
					}
				}
				nodes = append(nodes, name)
			}
			if len(nodes) == 0 {
				continue
			}
			var rr []string
			for d := range a.Classes {
				if a.Classes[d].ClusterID == cid {
					rr = append(rr, members(s, d)...)
				}
			}
			sort.Strings(rr)
			sort.Strings(nodes)
			out = append(out, Finding{
				Rule: RuleClusterIDConsistency, Object: nodeRef(nodes[0]),
				Message: fmt.Sprintf("%s %s with only some of the reflectors that share cluster ID %s (%s): a reflector keeps what another of the same ID reflects but never passes it on to its clients, so clients on different reflectors lose each other's routes (projectcalico/calico#2735); peer every client with every reflector of the cluster ID, or give each reflector its own ID",
					nameList(nodes), verb(nodes, "peers", "peer"), cid, nameList(rr)),
				key: RuleClusterIDConsistency + "|" + cid + "|" + strings.Join(nodes, ","),
			})
		}
	}
	out = append(out, e.clusterIDPolicy(s, base)...)
	return out
}

func (e *Engine) clusterIDPolicy(s, base *Snapshot) []Finding {
	if e.cfg.ClusterIDPolicy == ClusterIDAny {
		return nil
	}
	byID := reflectorsByClusterID(s)
	var out []Finding
	switch e.cfg.ClusterIDPolicy {
	case ClusterIDShared:
		if len(byID) > 1 && (base == nil || len(reflectorsByClusterID(base)) <= 1) {
			ids := sortedKeys(byID)
			out = append(out, Finding{
				Rule: RuleClusterIDConsistency, Object: nodeRef(byID[ids[0]][0]),
				Message: fmt.Sprintf("clusterIDPolicy is shared but reflectors use %d cluster IDs (%s): give them all the same one", len(ids), nameList(ids)),
				key:     RuleClusterIDConsistency + "|shared",
			})
		}
	case ClusterIDUnique:
		for _, id := range sortedKeys(byID) {
			if len(byID[id]) < 2 {
				continue
			}
			if base != nil && len(reflectorsByClusterID(base)[id]) >= 2 {
				continue
			}
			out = append(out, Finding{
				Rule: RuleClusterIDConsistency, Object: nodeRef(byID[id][0]),
				Message: fmt.Sprintf("clusterIDPolicy is unique but %s share cluster ID %s: give each reflector its own", nameList(byID[id]), id),
				key:     RuleClusterIDConsistency + "|unique|" + id,
			})
		}
	}
	return out
}

func reflectorsByClusterID(s *Snapshot) map[string][]string {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// asMismatched returns the client classes a reflector class has eBGP sessions with.
func asMismatched(s *Snapshot, r int) []int {
	a := s.Analysis
	if a.Classes[r].ClusterID == "" {
		return nil
	}
	var out []int
	for c := range a.Classes {
		if a.Classes[c].ClusterID == "" && a.Classes[c].AS != a.Classes[r].AS && (a.Session(bgp.IPv4, r, c) || a.Session(bgp.IPv6, r, c)) {
			out = append(out, c)
		}
	}
	return out
}

func (e *Engine) asMismatch(s, base *Snapshot) []Finding {
	var out []Finding
	a := s.Analysis
	for r := range a.Classes {
		cs := asMismatched(s, r)
		if len(cs) == 0 {
			continue
		}
		var clients []string
		for _, c := range cs {
			clients = append(clients, members(s, c)...)
		}
		sort.Strings(clients)
		for _, name := range members(s, r) {
			if base != nil {
				if bc := base.Analysis.Class(name); bc >= 0 && len(asMismatched(base, bc)) > 0 {
					continue
				}
			}
			n := s.State.Node(name)
			out = append(out, Finding{
				Rule: RuleASNumber, Object: nodeRef(name), Field: n.FieldPath("asNumber"),
				Message: fmt.Sprintf("reflector %s is in AS %d but its %s %s %s in AS %d: the sessions are eBGP and a reflector reflects only over iBGP (projectcalico/calico#2292); give reflector and clients the same AS",
					name, a.Classes[r].AS, verb(clients, "peer", "peers"), nameList(clients), verb(clients, "is", "are"), a.Classes[cs[0]].AS),
				key: RuleASNumber + "|" + name,
			})
		}
	}
	return out
}
