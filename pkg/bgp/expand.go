package bgp

import (
	"iter"
	"maps"
	"math/bits"
	"slices"
)

// Session expansion: which sessions calico-node configures between members of two classes
// (the mesh, global then node-scoped BGPPeers, then the implied reverse peerings, as confd's
// updatePeersV1 emits them), which come up (both ends configured, with the AS, port and
// password source the other end expects), which peer each end's peering comes from, and the
// routers outside the cluster.

// findExternals lists peerIP peers whose address is no node's.
func (a *Analysis) findExternals(down []bool) {
	t := a.Topology
	a.externals = nil
	a.ext = make([][]extSession, len(a.Classes))
	if !slices.ContainsFunc(t.Peers, func(p Peer) bool { return p.PeerIP != "" }) {
		return
	}
	addrs := map[string]bool{}
	for i := range t.Nodes {
		if t.Nodes[i].IPv4 != "" {
			addrs[t.Nodes[i].IPv4] = true
		}
		if t.Nodes[i].IPv6 != "" {
			addrs[t.Nodes[i].IPv6] = true
		}
	}
	seen := map[external]bool{}
	for _, p := range t.Peers {
		if p.PeerIP == "" || p.PeerSelector != nil || addrs[p.PeerIP] {
			continue
		}
		f, ok := ipFamily(p.PeerIP)
		if !ok {
			continue
		}
		e := external{ip: p.PeerIP, as: p.AS, f: f}
		if e.as == 0 {
			e.as = t.globalAS()
		}
		if !seen[e] {
			seen[e] = true
			a.externals = append(a.externals, e)
		}
	}
	// The peers of each external, in confd's order: global peers first; the first peering to
	// an address wins.
	by := map[external][]int{}
	for _, global := range []bool{true, false} {
		for p, peer := range t.Peers {
			if peer.global() != global || peer.PeerIP == "" || peer.PeerSelector != nil {
				continue
			}
			f, ok := ipFamily(peer.PeerIP)
			if !ok {
				continue
			}
			e := external{ip: peer.PeerIP, as: peer.AS, f: f}
			if e.as == 0 {
				e.as = t.globalAS()
			}
			if seen[e] {
				by[e] = append(by[e], p)
			}
		}
	}
	// Per external, its peers in that order over the classes each applies to (a.sides): the
	// work follows the sessions, not classes times externals (a router per node is thousands
	// of each). Externals are taken in order, so each class's list is sorted.
	for x, e := range a.externals {
		for _, p := range by[e] {
			for _, c := range a.sides[0][p] {
				if l := a.ext[c]; down[c] || !a.Classes[c].has[e.f] || (len(l) > 0 && l[len(l)-1].x == int32(x)) {
					continue // (or an earlier peer gave it)
				}
				a.ext[c] = append(a.ext[c], extSession{x: int32(x), claim: int32(p)})
			}
		}
	}
}

// extSession is a class's session with a router outside the cluster: external x
// (Analysis.externals), given by peer claim.
type extSession struct{ x, claim int32 }

// downClasses marks the classes whose BIRD refuses its whole configuration: a peerIP peer
// without asNumber that applies to them renders "neighbor ... as 0", which BIRD does not
// load. Their members have no session at all. local lists, per peer, the classes it applies
// to (peerSides).
func (a *Analysis) downClasses(local [][]int) []bool {
	down := make([]bool, len(a.Classes))
	for p := range a.Topology.Peers {
		if peer := &a.Topology.Peers[p]; peer.PeerIP != "" && peer.AS == 0 {
			for _, c := range local[p] {
				down[c] = true
			}
		}
	}
	return down
}

// peerSides lists, per peer, the classes it applies to (local) and the classes it selects
// (remote).
func (a *Analysis) peerSides() (local, remote [][]int) {
	local, remote = make([][]int, len(a.Topology.Peers)), make([][]int, len(a.Topology.Peers))
	for c := range a.Classes {
		for p, on := range a.Classes[c].local {
			if on {
				local[p] = append(local[p], c)
			}
		}
		for p, on := range a.Classes[c].remote {
			if on {
				remote[p] = append(remote[p], c)
			}
		}
	}
	return local, remote
}

// noClaim is the claim of a class pair that has a mesh session or no peering.
const noClaim int32 = -1

// OneSidedReason says why a session one end configures does not come up.
type OneSidedReason uint8

// The reasons.
const (
	// NotConfiguredBack: the other end does not configure the session, or not with the AS
	// and port in use.
	NotConfiguredBack OneSidedReason = iota + 1
	// PasswordsDiffer: both ends configure it, with passwords from different sources.
	PasswordsDiffer
)

// expandSessions fills session[f]: calico-node on a member of class x configures a session
// of family f to a member of class y, and BGP needs both ends configured with the same
// password; claim[f], the peer whose peering each end uses; and oneSided[f], the sessions
// configured that do not come up. The work is per peer over the classes it applies to and
// selects, not over every pair of classes (but for the mesh, which is every pair): a row is
// made only for a class with a session or a claim, so that thousands of classes (a BGPPeer
// per node) with few sessions each cost what their sessions do.
func (a *Analysis) expandSessions(f Family, sides [2][][]int, down []bool) {
	t := a.Topology
	k := len(a.Classes)
	words := (k + 63) / 64
	s := make([][]uint64, k)
	rows := make([]claimRow, k)
	a.session[f], a.claim[f], a.oneSided[f], a.meshed[f] = s, rows, nil, nil
	if !slices.ContainsFunc(a.Classes, func(c Class) bool { return c.has[f] }) {
		return // no node of this family: no row
	}
	// claim[x] lists x's claims as they are made (first come, first served), each with
	// whether y's end would accept it; once every claim is made it becomes x's row
	// (claimRow). A class claims toward few others or toward many (a reflector toward every
	// client class): its claims are looked up in the list while they are few, in bit rows
	// (claimedBits: which y are taken, okBits: which of them y's would accept) once they are
	// more than manyClaims. A thousand classes cost what their claims do, not a column of
	// every class each.
	claim := make([][]claimEntry, k)
	claimedBits, okBits := make([][]uint64, k), make([][]uint64, k)
	alloc := rowAlloc{words: words}
	find := func(x, y int) (claimEntry, bool) {
		for _, e := range claim[x] {
			if int(e.y) == y {
				return e, true
			}
		}
		return claimEntry{}, false
	}
	claimed := func(x, y int) bool {
		if claimedBits[x] != nil {
			return has(claimedBits[x], y)
		}
		_, ok := find(x, y)
		return ok
	}
	accepted := func(x, y int) bool {
		if okBits[x] != nil {
			return has(okBits[x], y)
		}
		e, ok := find(x, y)
		return ok && e.ok
	}
	doClaim := func(x, y int, p int32, ok bool) {
		claim[x] = append(claim[x], claimEntry{y: int32(y), p: p, ok: ok})
		switch {
		case claimedBits[x] != nil:
			set(claimedBits[x], y)
			if ok {
				set(okBits[x], y)
			}
		case len(claim[x]) > manyClaims:
			claimedBits[x], okBits[x] = alloc.row(), alloc.row()
			for _, e := range claim[x] {
				set(claimedBits[x], int(e.y))
				if e.ok {
					set(okBits[x], int(e.y))
				}
			}
		}
	}
	// confd emits one peering per node and peer address, the first that claims it: global
	// peers (no node, no nodeSelector) first, then node-scoped ones, then the implied reverse
	// sessions. Where two peers of one pass claim the same address confd's order is a map's;
	// rrguard takes them by name. A peering whose AS is not the remote node's never comes up.
	var local, remote []int
	members := func(p int) { local, remote = sides[0][p], sides[1][p] }
	for _, global := range []bool{true, false} {
		for p := range t.Peers {
			peer := &t.Peers[p]
			if global != peer.global() || !peer.forward(f) {
				continue
			}
			members(p)
			for _, x := range local {
				for _, y := range remote {
					cx, cy := &a.Classes[x], &a.Classes[y]
					// A peering to another port than the node listens on is an address of
					// its own in confd, and never comes up.
					if claimed(x, y) || BGPPort(peer.port(cy, t.globalAS())) != BGPPort(cy.ListenPort) {
						continue
					}
					// The other end expects the node's own AS: a localASNumber that differs
					// is refused.
					doClaim(x, y, int32(p), (peer.PeerSelector != nil || peer.AS == cy.AS) && (peer.LocalAS == 0 || peer.LocalAS == cx.AS))
				}
			}
		}
	}
	for p := range t.Peers {
		peer := &t.Peers[p]
		if peer.ReverseManual {
			continue
		}
		members(p)
		for _, y := range remote {
			if !peer.reverse(f, a.Classes[y].AS, t.globalAS()) || (peer.PeerSelector == nil && !t.acceptsPort(t.Nodes[a.Classes[y].Members[0]], peer.Port)) {
				continue
			}
			for _, x := range local {
				if !claimed(y, x) {
					doClaim(y, x, int32(p), true)
				}
			}
		}
	}
	takesPart := func(x int) bool { return a.Classes[x].has[f] && !down[x] }
	mark := func(x, y int) {
		if s[x] == nil {
			s[x] = alloc.row()
		}
		set(s[x], y)
	}
	// The mesh: its sessions are the pair's whatever a peer also claims (BIRD then has a
	// second protocol for the same neighbour, which stays down), with no filters and the
	// mesh's password on both ends.
	if t.Mesh {
		meshed := make([]uint64, words)
		for x := range a.Classes {
			if takesPart(x) && a.Classes[x].ClusterID == "" {
				set(meshed, x)
			}
		}
		// A meshed pair's session is the mesh's (meshed), whatever a peer claims.
		for x := range bitsFrom(meshed, 0) {
			claim[x] = slices.DeleteFunc(claim[x], func(e claimEntry) bool { return has(meshed, int(e.y)) })
		}
		a.meshed[f] = meshed
	}
	for x := range claim {
		rows[x] = newClaimRow(claim[x], k)
	}
	// BGP needs both ends configured, with the same password: the pairs some end claims.
	why := map[[2]int]OneSidedReason{}
	for x := range claim {
		if !takesPart(x) {
			continue
		}
		for _, e := range claim[x] {
			y := int(e.y)
			if !takesPart(y) {
				continue
			}
			both := accepted(x, y) && accepted(y, x)
			switch {
			case both && t.Peers[e.p].Password == t.Peers[rows[y].peer(x)].Password:
				mark(x, y)
			case both:
				why[[2]int{x, y}] = PasswordsDiffer
			case x != y || len(a.Classes[x].Members) > 1:
				why[[2]int{x, y}] = NotConfiguredBack
			}
		}
	}
	// Sessions one end configures (matching or not) that do not come up.
	if len(why) > 0 {
		a.oneSided[f] = why
	}
}

// rowAlloc hands out zeroed rows of words bits' words, carved from chunks of rowsPerChunk
// rows: a thousand classes' rows in a few allocations, not a thousand.
type rowAlloc struct {
	words int
	free  []uint64
}

const rowsPerChunk = 64

func (r *rowAlloc) row() []uint64 {
	if len(r.free) < r.words {
		r.free = make([]uint64, r.words*rowsPerChunk)
	}
	row := r.free[:r.words:r.words]
	r.free = r.free[r.words:]
	return row
}

// Session reports whether a member of class x and a (different) member of class y have a
// BGP session of family f.
func (a *Analysis) Session(f Family, x, y int) bool {
	if m := a.meshed[f]; m != nil && has(m, x) && has(m, y) {
		return true
	}
	row := a.session[f][x]
	return row != nil && has(row, y)
}

// Peered reports whether a member of class x and a (different) member of class y have a BGP
// session of either family.
func (a *Analysis) Peered(x, y int) bool { return a.Session(IPv4, x, y) || a.Session(IPv6, x, y) }

// sessionsFrom yields, in order, the classes from on whose members a member of class x has
// a session of family f with.
func (a *Analysis) sessionsFrom(f Family, x, from int) iter.Seq[int] {
	var mesh []uint64
	if m := a.meshed[f]; m != nil && has(m, x) {
		mesh = m
	}
	return unionFrom(a.session[f][x], mesh, from)
}

// bitsFrom yields, in order, the bits set in row from bit from on.
func bitsFrom(row []uint64, from int) iter.Seq[int] { return unionFrom(row, nil, from) }

// unionFrom yields, in order, the bits set in row or in other (either may be nil) from bit
// from on.
func unionFrom(row, other []uint64, from int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for w := from / 64; w < max(len(row), len(other)); w++ {
			var word uint64
			if w < len(row) {
				word = row[w]
			}
			if w < len(other) {
				word |= other[w]
			}
			if w == from/64 {
				word &^= 1<<(from%64) - 1
			}
			for ; word != 0; word &= word - 1 {
				if !yield(w*64 + bits.TrailingZeros64(word)) {
					return
				}
			}
		}
	}
}

// claimOf is the peer whose peering a member of class x configures toward a member of class
// y in family f (noClaim: a mesh session or none).
func (a *Analysis) claimOf(f Family, x, y int) int32 {
	return a.claim[f][x].peer(y)
}

// claimEntry is one claim: members of a class configure a peering toward members of class y
// with peer p; ok: y's members would accept it (its AS and local AS are theirs).
type claimEntry struct {
	y, p int32
	ok   bool
}

// manyClaims is how many claims a class makes before expandSessions looks them up in bit
// rows rather than in their list.
const manyClaims = 16

// claimRow is one class's claims (Analysis.claim): its entries sorted by class where they
// are few, else a column per class (the peer plus one; 0: none), which a reflector's claims
// toward every client class, or fully peered reflectors', fill.
type claimRow struct {
	entries []claimEntry
	dense   []int32
}

// newClaimRow makes the row of claims (in any order, one per class) among k classes; it may
// sort claims in place and keep them.
func newClaimRow(claims []claimEntry, k int) claimRow {
	if 3*len(claims) > k { // the column is smaller than the entries
		dense := make([]int32, k)
		for _, e := range claims {
			dense[e.y] = e.p + 1
		}
		return claimRow{dense: dense}
	}
	if len(claims) == 0 {
		return claimRow{}
	}
	slices.SortFunc(claims, func(e, g claimEntry) int { return int(e.y - g.y) })
	return claimRow{entries: slices.Clip(claims)}
}

// peer is the peer of the row's claim toward class y, noClaim if none.
func (r *claimRow) peer(y int) int32 {
	if r.dense != nil {
		return r.dense[y] - 1
	}
	i, ok := slices.BinarySearchFunc(r.entries, int32(y), func(e claimEntry, y int32) int { return int(e.y - y) })
	if !ok {
		return noClaim
	}
	return r.entries[i].p
}

// OneSided reports whether members of class x configure a session of family f to members
// of class y that does not come up: y's do not configure it back, or not with the AS and
// port x's use. BIRD keeps it Idle/Active and it carries no routes.
func (a *Analysis) OneSided(f Family, x, y int) bool { return a.oneSided[f][[2]int{x, y}] != 0 }

// OneSidedWhy says why the session of OneSided(f, x, y) does not come up (0: it is not
// one-sided).
func (a *Analysis) OneSidedWhy(f Family, x, y int) OneSidedReason { return a.oneSided[f][[2]int{x, y}] }

// OneSidedPairs lists the class pairs (x, y) of OneSided in family f, sorted.
func (a *Analysis) OneSidedPairs(f Family) [][2]int {
	return slices.SortedFunc(maps.Keys(a.oneSided[f]), func(p, q [2]int) int {
		if p[0] != q[0] {
			return p[0] - q[0]
		}
		return p[1] - q[1]
	})
}
