package bgp

import (
	"maps"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/selector"
)

// Incremental analyses: the analysis of a topology that differs from an analysed one in one
// node (WithNode), in its BGPPeers (WithPeers) or in the mesh setting (WithConfig), derived
// without classifying every node again. Admission judges every change this way, so a
// decision's cost follows the change, not the cluster.
//
// The invariants every analysis keeps, fresh or derived (TestWithNodeMatchesAnalyze,
// TestWithPeersMatchesAnalyze and TestWithConfigMatchesAnalyze check derived analyses against
// fresh ones):
//
//  1. ClassOf[i] is NoClass exactly for the nodes that take part in nothing (takesPart);
//     otherwise node i is a member of Classes[ClassOf[i]], and a class's members are exactly
//     the nodes whose ClassOf names it. No class is empty.
//  2. A class is uniform: its members agree on cluster ID, AS, listen port, address families
//     and, for every peer, whether the peer applies to them (local) and selects them
//     (remote); the class records those. Classes need not be maximal: two classes may
//     agree on all of it (after a peer that told them apart is removed, or a split). The
//     model's answers do not depend on how finely uniform nodes are split
//     (TestClassReductionMatchesPerNode: one class per node gives the same answers).
//  3. keys maps a key (Class.key) only to a class with that key, and the key of every class
//     to one; when two classes share a key it names one of them, which new members with that
//     key join. After withPeersInPlace a key two classes shared may be missing (one changed):
//     a node with it then forms a class of its own, which 2 allows.
//  4. byName maps every node's name to its index in Topology.Nodes.
//  5. labels indexes the labels of exactly Topology.Nodes: an analysis with other nodes (or
//     other labels on a node) gets an index of its own.
//  6. A derived analysis shares what it does not change with the analysis it comes from
//     (ClassOf, byName, keys, Classes' Members and attributes): shared slices, maps and
//     classAttrs are never written; what changes is copied first. The analysis derived
//     from is untouched.

// WithNode returns the analysis of t, a topology equal to a.Topology but for node i, which
// is replaced (or appended, when i == len(a.Topology.Nodes)); peers, mesh and AS are the
// same. Only that node is classified again.
func (a *Analysis) WithNode(t *Topology, i int) *Analysis {
	var kb strings.Builder
	key := "" // node i's key, where computed
	if i < len(a.ClassOf) && a.ClassOf[i] != NoClass && t.Nodes[i].Name == a.Topology.Nodes[i].Name {
		// The common case: a change (a label no selector reads, a tunnel address, …) that
		// leaves the node in its class changes nothing of the analysis but the labels. An
		// unchanged signature says so without evaluating a selector (a class's members share
		// their key); otherwise the key decides.
		old := a.ClassOf[i]
		now, same := old, takesPart(t.Nodes[i]) && a.sameSignature(a.Topology.Nodes[i], t.Nodes[i])
		if !same {
			var ok bool
			key = a.nodeKey(t, i, false, &kb)
			if now, ok = a.keys[key]; !ok {
				now = NoClass
			}
			same = now == old
		}
		if same {
			b := *a
			b.Topology, b.labels = t, &labelIndex{}
			b.whatIf = &whatIfs{}
			b.whatIf.steps.Store(int64(b.budget.MaxSteps))
			return &b
		}
		if now != NoClass && len(a.Classes[old].Members) > standinsPerClass && len(a.Classes[now].Members) >= standinsPerClass {
			return a.moved(t, i, old, now)
		}
	}
	b := a.derive(t)
	b.sigs = a.sigs // the same peers and pools
	b.keys, b.labels = maps.Clone(a.keys), &labelIndex{}
	b.ClassOf = slices.Clone(a.ClassOf)
	b.Classes = slices.Clone(a.Classes)
	old := NoClass
	if i < len(a.ClassOf) {
		old = a.ClassOf[i]
	} else {
		b.ClassOf = append(b.ClassOf, NoClass)
		b.byName = maps.Clone(a.byName)
		b.byName[t.Nodes[i].Name] = i
	}
	if old != NoClass {
		b.Classes[old].Members = slices.DeleteFunc(slices.Clone(b.Classes[old].Members), func(m int) bool { return m == i })
	}
	// Members slices of other classes are shared with a: the class i joins must append to
	// a copy, which a full slice expression forces.
	for c := range b.Classes {
		if c != old {
			b.Classes[c].Members = slices.Clip(b.Classes[c].Members)
		}
	}
	b.ClassOf[i] = b.place(i, false, &kb, key)
	if old != NoClass && len(b.Classes[old].Members) == 0 {
		b.dropClass(old)
	}
	b.base = a
	b.finish()
	return b
}

// moved is WithNode for node i moving from class old to class now, both keeping
// standinsPerClass members or more: no class made, none emptied, so the keys are a's, and
// the sessions, session graph and propagation are a's too (see sameShapeAs). A node moving
// to another rack in a cluster of rack BGPPeers is this.
func (a *Analysis) moved(t *Topology, i int, old, now ClassID) *Analysis {
	b := a.derive(t)
	b.sigs, b.keys, b.labels = a.sigs, a.keys, &labelIndex{}
	b.ClassOf = slices.Clone(a.ClassOf)
	b.ClassOf[i] = now
	b.Classes = slices.Clone(a.Classes)
	b.Classes[old].Members = slices.DeleteFunc(slices.Clone(a.Classes[old].Members), func(m int) bool { return m == i })
	b.Classes[now].Members = append(slices.Clip(a.Classes[now].Members), i)
	b.sameShapeAs(a)
	return b
}

// sameShapeAs gives b, which WithNode derived from a by moving one node from a class to
// another that both keep standinsPerClass members or more, a's sessions, session graph and
// propagation: what they are made of is the classes (no class came or went, none changed
// what it is) and, of the members, only how many stand in (standinsPerClass at most: the
// same), whether a class has more than one (one-sided sessions within it) and whether
// another member is there to learn (gaps): the same on both sides of the move. The node's
// addresses cannot make a router outside the cluster appear or go: a class's members share
// whether a peer selects them by address, and these keep three members or more. A node
// moving to another rack in a cluster of rack BGPPeers is this. withPeersInPlace uses it too,
// for BGPPeers whose selectors were written anew for the same classes.
func (b *Analysis) sameShapeAs(a *Analysis) {
	b.sides, b.externals, b.ext, b.meshed = a.sides, a.externals, a.ext, a.meshed
	b.session, b.claim, b.oneSided = a.session, a.claim, a.oneSided
	b.graphs, b.gaps, b.gapCount, b.Undecided = a.graphs, a.gaps, a.gapCount, a.Undecided
	b.whatIf = &whatIfs{}
	b.whatIf.steps.Store(int64(b.budget.MaxSteps))
}

// SameModel reports whether a and b share their classes and sessions: b is a derived
// analysis that changed nothing but labels no selector reads (WithNode's common case), or
// the reverse. False negatives are possible (two equal models built apart), never false
// positives.
func (a *Analysis) SameModel(b *Analysis) bool {
	return len(a.ClassOf) == len(b.ClassOf) && len(a.Classes) == len(b.Classes) && (len(a.ClassOf) == 0 || &a.ClassOf[0] == &b.ClassOf[0]) &&
		(len(a.Classes) == 0 || &a.Classes[0] == &b.Classes[0]) && a.Topology.Mesh == b.Topology.Mesh &&
		len(a.session[IPv4]) == len(b.session[IPv4]) && (len(a.session[IPv4]) == 0 || &a.session[IPv4][0] == &b.session[IPv4][0])
}

// dropClass removes an empty class and renumbers the ones after it (in ClassOf and keys,
// which the caller owns).
func (a *Analysis) dropClass(c ClassID) {
	a.Classes = slices.Delete(a.Classes, c, c+1)
	for i, x := range a.ClassOf {
		if x > c {
			a.ClassOf[i] = x - 1
		}
	}
	for k, x := range a.keys {
		switch {
		case x == c:
			delete(a.keys, k)
		case x > c:
			a.keys[k] = x - 1
		}
	}
}

// WithPeers returns the analysis of t, a topology with a.Topology's nodes, mesh and AS but
// other BGPPeers. A peer's sides are taken from the classes where they are known already: the
// same peer, or a selector another peer uses (a selector already evaluated is uniform over
// each class). A side not known yet — a new selector, a node name, a peer IP — is evaluated
// per distinct value of the labels it reads (see labelIndex), and a class whose members it
// tells apart is split in two. No node is classified again.
func (a *Analysis) WithPeers(t *Topology) *Analysis {
	if b := a.withPeersInPlace(t); b != nil {
		return b
	}
	type known struct {
		p      int
		remote bool
	}
	bySelector := map[string]known{}
	byName := map[string]int{}
	for p := range a.Topology.Peers {
		peer := &a.Topology.Peers[p]
		byName[peer.Name] = p
		if peer.Node == "" && peer.NodeSelector != nil && !peer.NodeSelector.IsZero() {
			bySelector[peer.NodeSelector.String()] = known{p, false}
		}
		if peer.PeerSelector != nil && !peer.PeerSelector.IsZero() {
			bySelector[peer.PeerSelector.String()] = known{p, true}
		}
	}
	b := a.derive(t)
	b.ClassOf, b.Classes, b.keys = a.ClassOf, slices.Clone(a.Classes), map[string]ClassID{}
	r := refinement{a: a, b: b}
	r.local, r.remote = make([][]bool, len(t.Peers)), make([][]bool, len(t.Peers))
	// Sides known per class first (they split nothing), then the others, each splitting the
	// classes it tells apart.
	type pending struct {
		q      int
		remote bool
	}
	var perNode []pending
	column := func(p int, remote bool) []bool {
		out := make([]bool, len(a.Classes))
		for c := range a.Classes {
			if remote {
				out[c] = a.Classes[c].remote[p]
			} else {
				out[c] = a.Classes[c].local[p]
			}
		}
		return out
	}
	side := func(sel *selector.Selector) []bool {
		if sel.IsZero() {
			return uniform(len(a.Classes), false) // a selector that did not parse selects nothing
		}
		if k, ok := bySelector[sel.String()]; ok {
			return column(k.p, k.remote)
		}
		return nil
	}
	for q := range t.Peers {
		peer := &t.Peers[q]
		if p, ok := byName[peer.Name]; ok && samePeer(peer, &a.Topology.Peers[p]) {
			r.local[q], r.remote[q] = column(p, false), column(p, true)
			continue
		}
		switch {
		case peer.Node != "":
		case peer.NodeSelector == nil:
			r.local[q] = uniform(len(a.Classes), true)
		default:
			r.local[q] = side(peer.NodeSelector)
		}
		switch {
		case peer.PeerSelector != nil:
			r.remote[q] = side(peer.PeerSelector)
		case peer.PeerIP == "":
			r.remote[q] = uniform(len(a.Classes), false)
		}
		if r.local[q] == nil {
			perNode = append(perNode, pending{q, false})
		}
		if r.remote[q] == nil {
			perNode = append(perNode, pending{q, true})
		}
	}
	for _, s := range perNode {
		r.refine(s.q, s.remote)
	}
	b = r.b
	for c := range b.Classes {
		attrs := *b.Classes[c].classAttrs
		attrs.local, attrs.remote = make([]bool, len(t.Peers)), make([]bool, len(t.Peers))
		b.Classes[c].classAttrs = &attrs
		for q := range t.Peers {
			b.Classes[c].local[q], b.Classes[c].remote[q] = r.local[q][c], r.remote[q][c]
		}
		// Two classes may now have the same key (invariant 3): the key names one of them.
		b.keys[b.Classes[c].key()] = c
	}
	b.base = a
	b.finish()
	return b
}

// maxPeersInPlace is how many BGPPeers may differ for withPeersInPlace.
const maxPeersInPlace = 4

// withPeersInPlace is WithPeers where t's peers are a's, by name and in order, but for up to
// maxPeersInPlace whose spec differs (an update of a BGPPeer: what admission sees most), nil
// otherwise. The classes keep their per-peer columns (shared with a) and only the changed
// peers' sides are evaluated: with a BGPPeer per node, thousands of peers and classes, the
// general way reads and writes every column of every class.
func (a *Analysis) withPeersInPlace(t *Topology) *Analysis {
	old := a.Topology.Peers
	if len(t.Peers) != len(old) {
		return nil
	}
	var changed []int
	for q := range t.Peers {
		if t.Peers[q].Name != old[q].Name {
			return nil
		}
		// Changed in anything that makes sessions: sides (samePeer), or only filters,
		// password, port or local AS (sameButSelectors), which leave the classes as they
		// are and not the sessions.
		if !samePeer(&t.Peers[q], &old[q]) || !sameButSelectors(&t.Peers[q], &old[q]) {
			if changed = append(changed, q); len(changed) > maxPeersInPlace {
				return nil
			}
		}
	}
	b := a.derive(t)
	b.ClassOf, b.Classes = a.ClassOf, slices.Clone(a.Classes)
	r := refinement{a: a, b: b}
	r.local, r.remote = make([][]bool, len(t.Peers)), make([][]bool, len(t.Peers))
	// The sides no node decides first (they split nothing), then the others, each splitting
	// the classes it tells apart (as WithPeers does).
	for _, q := range changed {
		peer := &t.Peers[q]
		switch {
		case peer.Node != "":
		case peer.NodeSelector == nil:
			r.local[q] = uniform(len(a.Classes), true)
		case peer.NodeSelector.IsZero():
			r.local[q] = uniform(len(a.Classes), false) // a selector that did not parse selects nothing
		}
		switch {
		case peer.PeerSelector != nil && peer.PeerSelector.IsZero(), peer.PeerSelector == nil && peer.PeerIP == "":
			r.remote[q] = uniform(len(a.Classes), false)
		}
	}
	for _, q := range changed {
		if r.local[q] == nil {
			r.refine(q, false)
		}
		if r.remote[q] == nil {
			r.refine(q, true)
		}
	}
	b = r.b
	// The classes whose columns of the changed peers differ now, new classes included: their
	// columns are written on copies, and their keys change.
	var touched []int
	for c := range b.Classes {
		if c >= len(a.Classes) || slices.ContainsFunc(changed, func(q int) bool {
			return b.Classes[c].local[q] != r.local[q][c] || b.Classes[c].remote[q] != r.remote[q][c]
		}) {
			touched = append(touched, c)
		}
	}
	if len(touched) == 0 && !slices.ContainsFunc(changed, func(q int) bool { return !sameButSelectors(&t.Peers[q], &old[q]) }) {
		// The changed peers select the same classes as before and differ in nothing else (a
		// selector written anew, for the same nodes): the sessions and what they carry are
		// a's. The classes stay b's own, so the model does not count as the same
		// (SameModel): the rules that read the BGPPeers still judge the new selectors.
		b.keys = a.keys // no column changed (shared: invariant 6)
		b.sameShapeAs(a)
		return b
	}
	// Invariant 3: a key no class has any more is forgotten first (a class that shares it,
	// unchanged, then has no entry: a node with that key forms a class of its own, which
	// invariant 2 allows), then the touched classes' keys are written.
	b.keys = maps.Clone(a.keys)
	for _, c := range touched {
		if c < len(a.Classes) {
			if k := a.Classes[c].key(); b.keys[k] == c {
				delete(b.keys, k)
			}
		}
	}
	for _, c := range touched {
		b.Classes[c] = b.Classes[c].withSides()
		cl := &b.Classes[c]
		for _, q := range changed {
			cl.local[q], cl.remote[q] = r.local[q][c], r.remote[q][c]
		}
		b.keys[cl.key()] = c
	}
	b.sides = a.sidesWith(b, changed)
	b.base = a
	b.finish()
	return b
}

// sidesWith returns the peers' sides (peerSides) of b, which withPeersInPlace derived from a
// by changing the peers changed: theirs are listed anew; another peer's are a's, and the
// classes split off since (appended after a's, so the lists stay in class order) where it
// applies to or selects them. No list of a is written.
func (a *Analysis) sidesWith(b *Analysis, changed []int) [2][][]int {
	sides := [2][][]int{slices.Clone(a.sides[0]), slices.Clone(a.sides[1])}
	for _, q := range changed {
		sides[0][q], sides[1][q] = nil, nil
		for c := range b.Classes {
			if b.Classes[c].local[q] {
				sides[0][q] = append(sides[0][q], c)
			}
			if b.Classes[c].remote[q] {
				sides[1][q] = append(sides[1][q], c)
			}
		}
	}
	for c := len(a.Classes); c < len(b.Classes); c++ {
		for p := range b.Topology.Peers {
			if slices.Contains(changed, p) {
				continue
			}
			if b.Classes[c].local[p] {
				sides[0][p] = append(slices.Clip(sides[0][p]), c)
			}
			if b.Classes[c].remote[p] {
				sides[1][p] = append(slices.Clip(sides[1][p]), c)
			}
		}
	}
	return sides
}

// sameButSelectors reports whether peers x and y, which select the same classes, differ at
// most in how their selectors are written: a peer's sessions are made of its sides, its
// node or address, AS numbers, port, reverse peering, filters and password, and of whether
// it has a selector at all (a global peer, a peerIP one).
func sameButSelectors(x, y *Peer) bool {
	return x.Node == y.Node && x.PeerIP == y.PeerIP && x.AS == y.AS && x.ReverseManual == y.ReverseManual && x.Port == y.Port &&
		x.LocalAS == y.LocalAS && slices.Equal(x.Filters, y.Filters) && x.Password == y.Password &&
		(x.NodeSelector == nil) == (y.NodeSelector == nil) && (x.PeerSelector == nil) == (y.PeerSelector == nil)
}

// uniform is a peer's side that is v for each of n classes.
func uniform(n int, v bool) []bool {
	out := make([]bool, n)
	if v {
		for c := range out {
			out[c] = true
		}
	}
	return out
}

// refinement is WithPeers' work in progress: b's classes, and the sides of t's peers per
// class (nil: not known yet), which grow with every class split.
type refinement struct {
	a, b          *Analysis
	local, remote [][]bool
	owned         bool // b.ClassOf is b's own copy
}

// refine evaluates side (local or remote) of peer q per node, splits every class whose
// members it tells apart, and records the side per class.
func (r *refinement) refine(q int, remote bool) {
	b, t := r.b, r.b.Topology
	peer := &t.Peers[q]
	var match []bool   // per node
	var byClass []int8 // per class, where known (labelIndex.matches)
	// Per class values of labels are kept for a class assignment no one changes: the base's,
	// not this refinement's own copy, which the splits rewrite.
	classes := b.Classes
	if r.owned {
		classes = nil
	}
	switch {
	case !remote && peer.Node != "":
		match = make([]bool, len(t.Nodes))
		if i, ok := b.byName[peer.Node]; ok {
			match[i] = true
		}
	case !remote:
		match, byClass = b.labels.matches(t, b.ClassOf, classes, peer.NodeSelector)
	case peer.PeerSelector != nil:
		match, byClass = b.labels.matches(t, b.ClassOf, classes, peer.PeerSelector)
	default:
		match = make([]bool, len(t.Nodes))
		for i, n := range t.Nodes {
			match[i] = n.IPv4 == peer.PeerIP || n.IPv6 == peer.PeerIP
		}
	}
	count := make([]int, len(b.Classes))
	if byClass == nil {
		for i, c := range b.ClassOf {
			if c != NoClass && match[i] {
				count[c]++
			}
		}
	}
	for c, v := range byClass {
		switch v {
		case selectsAll:
			count[c] = len(b.Classes[c].Members)
		case selectsSome:
			for _, m := range b.Classes[c].Members {
				if match[m] {
					count[c]++
				}
			}
		}
	}
	col := make([]bool, len(b.Classes))
	for c, n := range count {
		col[c] = n > 0
		if n == 0 || n == len(b.Classes[c].Members) {
			continue
		}
		// Split: the members that match stay, the others form a new class that inherits
		// everything known of c so far.
		if !r.owned {
			b.ClassOf, r.owned = slices.Clone(b.ClassOf), true
		}
		d := ClassID(len(b.Classes))
		split := b.Classes[c]
		var stay, move []int
		for _, m := range b.Classes[c].Members {
			if match[m] {
				stay = append(stay, m)
			} else {
				move = append(move, m)
				b.ClassOf[m] = d
			}
		}
		b.Classes[c].Members, split.Members = stay, move
		b.Classes = append(b.Classes, split)
		col = append(col, false)
		for x := range r.local {
			if r.local[x] != nil {
				r.local[x] = append(r.local[x], r.local[x][c])
			}
			if r.remote[x] != nil {
				r.remote[x] = append(r.remote[x], r.remote[x][c])
			}
		}
	}
	if remote {
		r.remote[q] = col
	} else {
		r.local[q] = col
	}
}

// samePeer reports whether two peers decide the same sessions (their selectors are shared
// pointers when they come from one parsed BGPPeer).
func samePeer(x, y *Peer) bool {
	return x.Node == y.Node && x.PeerIP == y.PeerIP && x.AS == y.AS && x.ReverseManual == y.ReverseManual &&
		x.NodeSelector == y.NodeSelector && x.PeerSelector == y.PeerSelector
}

// WithConfig returns the analysis of t, a topology equal to a.Topology but for what
// BGPConfigurations set, keeping the classes; nil when the global AS or a listen port
// changes too (class keys hold both: nodes may change class).
func (a *Analysis) WithConfig(t *Topology) *Analysis {
	if t.globalAS() != a.Topology.globalAS() || t.ListenPort != a.Topology.ListenPort || !maps.Equal(t.ListenPorts, a.Topology.ListenPorts) {
		return nil
	}
	b := a.derive(t)
	b.ClassOf, b.Classes, b.keys = a.ClassOf, a.Classes, a.keys
	b.base = a
	b.finish()
	return b
}
