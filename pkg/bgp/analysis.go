package bgp

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rrguard/rrguard/pkg/selector"
)

// ClassID identifies a class of an analysis: an index into Analysis.Classes, or NoClass.
type ClassID = int

// NoClass is the class of a node that takes part in nothing (NotReady, or without a BGP
// address).
const NoClass ClassID = -1

// Class is a set of nodes that calico-node treats identically: same cluster ID, AS, address
// families, and the same matches for every BGPPeer. Members are indexes into Topology.Nodes.
type Class struct {
	Members   []int
	ClusterID string
	AS        uint32
	// ListenPort is the port the members listen on, as calico-node renders it (0: 179).
	ListenPort uint16
	has        [2]bool
	local      []bool // per peer: the peer is configured on these nodes
	remote     []bool // per peer: the peer selects these nodes as remote
	// routes are the route groups the members originate, per family (sorted).
	routes [2][]int
}

// Routes returns the route groups (see Analysis.Group) the members originate in family f.
func (c *Class) Routes(f Family) []int { return c.routes[f] }

// HasFamily reports whether members have a BGP address of family f.
func (c *Class) HasFamily(f Family) bool { return c.has[f] }

// external is a BGP speaker outside the cluster, reached by a peerIP BGPPeer.
type external struct {
	ip string
	as uint32
	f  Family
}

// Gap says that the nodes of class To do not learn the pod routes of the nodes of class From
// (for From == To: of the other members of the class).
type Gap struct {
	Family   Family
	From, To int
}

// Analysis is the session graph and route-propagation result of a Topology.
type Analysis struct {
	Topology *Topology
	Classes  []Class
	// ClassOf maps a node index to its class, NoClass for nodes that take part in nothing
	// (NotReady, or without a BGP address).
	ClassOf []ClassID
	// Gaps lists, per family, the class pairs whose routes do not propagate.
	Gaps []Gap
	// Undecided lists the families whose propagation exceeded the budget: for them Gaps
	// says nothing (no gap is reported, none is ruled out).
	Undecided []Undecided

	byName    map[string]int     // node name → index into Topology.Nodes
	keys      map[string]ClassID // class key → a class with that key (see incremental.go)
	labels    *labelIndex        // the nodes by label value, shared by analyses of the same nodes
	externals []external
	// session[f][a][b]: a member of class a has a session with every member of class b
	// (for a == b: with every other member).
	session [2][][]bool
	extSess [][]bool // [class][external]
	// oneSided[f] holds the class pairs (a, b) where a member of a configures a session of
	// family f to a member of b that does not come up, and why (see OneSided).
	oneSided [2]map[[2]int]OneSidedReason
	// claim[f][a][b] is the peer (index into Topology.Peers) whose peering a member of a
	// configures toward a member of b in family f: the one whose filters and password that
	// end uses; noClaim when the pair has a mesh session or none.
	claim [2][][]int32
	// extClaim[c][x] is the peer that gives class c its session with external x.
	extClaim [][]int32
	// groups are the route groups of the nodes' routes.
	groups *routeGroups
	gapSet map[Gap]bool
	// missing[f] maps a class pair (from, to) to the route groups of from that to's members
	// do not learn (whatever carries them), for the pairs with any.
	missing [2]map[[2]int][]int
	graphs  [2]*sessionGraph // the session graph of each family, kept for LostIfDown
	budget  Budget
	whatIf  *whatIfs // what LostIfDown may still spend
	search  bool     // tests: always search, never the closure
}

// Analyze expands sessions and simulates route propagation.
func Analyze(t *Topology) *Analysis { return AnalyzeWithin(t, DefaultBudget) }

// Budget returns the propagation budget of the analysis (and of those derived from it).
func (a *Analysis) Budget() Budget { return a.budget }

// Within returns the analysis with another budget for the analyses derived from it (WithNode,
// WithPeers, WithConfig) and for its what-ifs; a and the copy share everything else.
func (a *Analysis) Within(b Budget) *Analysis {
	c := *a
	c.budget = b
	c.whatIf = &whatIfs{}
	c.whatIf.steps.Store(int64(b.MaxSteps))
	return &c
}

// AnalyzeWithin is Analyze with another propagation budget (derived analyses keep it).
func AnalyzeWithin(t *Topology, b Budget) *Analysis { return analyzeWith(t, b, false) }

func analyzeWith(t *Topology, b Budget, search bool) *Analysis {
	a := &Analysis{Topology: t, ClassOf: make([]ClassID, len(t.Nodes)), byName: make(map[string]int, len(t.Nodes)), budget: b, search: search, labels: &labelIndex{}}
	a.classify(false)
	a.finish()
	return a
}

// analyze with perNode puts every node in a class of its own: the plain per-node simulation
// that the class reduction must agree with (tests compare the two).
func analyze(t *Topology, perNode bool) *Analysis {
	a := &Analysis{Topology: t, ClassOf: make([]ClassID, len(t.Nodes)), byName: make(map[string]int, len(t.Nodes)), budget: DefaultBudget, labels: &labelIndex{}}
	a.classify(perNode)
	a.finish()
	return a
}

// finish expands sessions and simulates propagation over the classes.
func (a *Analysis) finish() {
	local, remote := a.peerSides()
	down := a.downClasses(local)
	a.findExternals(down)
	for _, f := range families {
		a.expandSessions(f, [2][][]int{local, remote}, down)
	}
	a.gapSet = map[Gap]bool{}
	a.Gaps, a.Undecided, a.graphs, a.missing = nil, nil, [2]*sessionGraph{}, [2]map[[2]int][]int{}
	if a.budget == (Budget{}) {
		a.budget = DefaultBudget
	}
	a.whatIf = &whatIfs{}
	a.whatIf.steps.Store(int64(a.budget.MaxSteps))
	for _, f := range families {
		a.propagate(f)
	}
}

func (a *Analysis) classify(perNode bool) {
	t := a.Topology
	a.keys = map[string]ClassID{}
	if a.groups == nil {
		a.groups = newRouteGroups(t)
	}
	var kb strings.Builder
	var sb []byte
	sig := newSignatures(t, a.groups)
	bySig := map[string]ClassID{}
	for i := range t.Nodes {
		a.byName[t.Nodes[i].Name] = i
		if perNode {
			a.ClassOf[i] = a.place(i, perNode, &kb)
			continue
		}
		// Nodes with the same signature have the same class key: the key is computed once.
		sb = sig.of(t.Nodes[i], sb)
		if c, ok := bySig[string(sb)]; ok && c != NoClass {
			a.Classes[c].Members = append(a.Classes[c].Members, i)
			a.ClassOf[i] = c
			continue
		}
		a.ClassOf[i] = a.place(i, perNode, &kb)
		bySig[string(sb)] = a.ClassOf[i]
	}
}

// signatures: two nodes with the same signature match the same peers the same way, so
// they have the same class key. A signature holds what a key is computed from: cluster ID,
// AS, addresses' presence, the values of the labels some selector reads, and the name and
// addresses where a peer names them.
type signatures struct {
	t      *Topology
	groups *routeGroups
	keys   map[string]bool
	names  map[string]bool
	ips    map[string]bool
	hits   []string
	// sorted are the keys, sorted.
	sorted []string
}

func newSignatures(t *Topology, groups *routeGroups) *signatures {
	s := &signatures{t: t, groups: groups, keys: map[string]bool{}, names: map[string]bool{}, ips: map[string]bool{}}
	add := func(sel *selector.Selector) {
		if sel == nil {
			return
		}
		for _, k := range sel.Keys() {
			s.keys[k] = true
		}
	}
	for p := range t.Peers {
		add(t.Peers[p].NodeSelector)
		add(t.Peers[p].PeerSelector)
		if t.Peers[p].Node != "" {
			s.names[t.Peers[p].Node] = true
		}
		if t.Peers[p].PeerIP != "" {
			s.ips[t.Peers[p].PeerIP] = true
		}
	}
	for i := range t.PoolList() {
		add(t.PoolList()[i].NodeSelector)
	}
	s.sorted = slices.Sorted(maps.Keys(s.keys))
	return s
}

func (s *signatures) of(n *Node, b []byte) []byte {
	b = b[:0]
	if !takesPart(n) {
		return b
	}
	b = append(b, n.ClusterID...)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(s.t.NodeAS(n)), 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(s.t.listenPort(n)), 10)
	b = append(b, '|', flag(n.IPv4 != "")|flag(n.IPv6 != "")<<1, '|')
	if s.names[n.Name] {
		b = append(b, "name="...)
		b = append(b, n.Name...)
	}
	b = append(b, 0)
	if s.ips[n.IPv4] {
		b = append(b, n.IPv4...)
	}
	b = append(b, 0)
	if s.ips[n.IPv6] {
		b = append(b, n.IPv6...)
	}
	// The routes of the blocks it holds (those of the pools that select it follow from the
	// labels below).
	if len(n.Blocks) > 0 {
		groups, held := s.groups.blockGroups(s.t, n)
		slices.Sort(groups)
		slices.Sort(held)
		b = append(b, 0, 'g')
		for _, g := range slices.Compact(groups) {
			b = strconv.AppendInt(append(b, ','), int64(g), 10)
		}
		b = append(b, 0, 'h')
		for _, p := range slices.Compact(held) {
			b = strconv.AppendInt(append(b, ','), int64(p), 10)
		}
	}
	// The values of the labels some selector reads, in key order.
	hits := s.sorted
	if len(s.sorted) > len(n.Labels) {
		s.hits = s.hits[:0]
		for k := range n.Labels {
			if s.keys[k] {
				s.hits = append(s.hits, k)
			}
		}
		sort.Strings(s.hits)
		hits = s.hits
	}
	for _, k := range hits {
		v, ok := n.Labels[k]
		if !ok {
			continue
		}
		b = append(b, 0)
		b = append(b, k...)
		b = append(b, 0)
		b = append(b, v...)
	}
	return b
}

// place puts node i in the class of its key, creating the class if needed, and returns the
// class (NoClass for a node that takes part in nothing).
func (a *Analysis) place(i int, perNode bool, kb *strings.Builder) ClassID {
	t := a.Topology
	n := t.Nodes[i]
	if !takesPart(n) {
		return NoClass
	}
	// The peers' sides are evaluated once, for the key and for the class if it is new.
	l := n.prepared()
	cl := Class{Members: []int{i}, ClusterID: n.ClusterID, AS: t.NodeAS(n), ListenPort: t.listenPort(n), has: [2]bool{n.IPv4 != "", n.IPv6 != ""},
		local: make([]bool, len(t.Peers)), remote: make([]bool, len(t.Peers)), routes: a.groups.nodeRoutes(t, n, l)}
	for p := range t.Peers {
		cl.local[p] = t.Peers[p].appliesTo(n, l)
		cl.remote[p] = t.Peers[p].selects(n, l)
	}
	kb.Reset()
	if perNode {
		kb.WriteString(n.Name)
		kb.WriteByte(0)
	}
	writeKey(kb, cl.ClusterID, cl.AS, cl.ListenPort, cl.has[IPv4], cl.has[IPv6], len(t.Peers), func(p int) (bool, bool) { return cl.local[p], cl.remote[p] }, cl.routes)
	key := kb.String()
	if c, ok := a.keys[key]; ok {
		a.Classes[c].Members = append(a.Classes[c].Members, i)
		return c
	}
	c := len(a.Classes)
	a.keys[key] = c
	a.Classes = append(a.Classes, cl)
	return c
}

// nodeKey is the class key of node i of t ("" for a node that takes part in nothing): every
// attribute that decides its sessions and how it treats routes.
func (a *Analysis) nodeKey(t *Topology, i int, perNode bool, kb *strings.Builder) string {
	n := t.Nodes[i]
	if !takesPart(n) {
		return ""
	}
	l := n.prepared()
	kb.Reset()
	if perNode {
		kb.WriteString(n.Name)
		kb.WriteByte(0)
	}
	writeKey(kb, n.ClusterID, t.NodeAS(n), t.listenPort(n), n.IPv4 != "", n.IPv6 != "", len(t.Peers), func(p int) (bool, bool) {
		return t.Peers[p].appliesTo(n, l), t.Peers[p].selects(n, l)
	}, a.groups.nodeRoutes(t, n, l))
	return kb.String()
}

// key is the class key its members have (see nodeKey).
func (c *Class) key() string {
	var kb strings.Builder
	writeKey(&kb, c.ClusterID, c.AS, c.ListenPort, c.has[IPv4], c.has[IPv6], len(c.local), func(p int) (bool, bool) { return c.local[p], c.remote[p] }, c.routes)
	return kb.String()
}

func writeKey(kb *strings.Builder, cid string, as uint32, port uint16, v4, v6 bool, peers int, bits func(p int) (local, remote bool), routes [2][]int) {
	kb.WriteString(cid)
	kb.WriteByte('|')
	kb.WriteByte(byte(port >> 8))
	kb.WriteByte(byte(port))
	kb.WriteByte(byte(as >> 24))
	kb.WriteByte(byte(as >> 16))
	kb.WriteByte(byte(as >> 8))
	kb.WriteByte(byte(as))
	kb.WriteByte(flag(v4) | flag(v6)<<1)
	for p := 0; p < peers; p++ {
		local, remote := bits(p)
		kb.WriteByte(flag(local) | flag(remote)<<1)
	}
	for f := range routes {
		kb.WriteByte('|')
		for _, g := range routes[f] {
			kb.WriteString(strconv.Itoa(g))
			kb.WriteByte(',')
		}
	}
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// findExternals lists peerIP peers whose address is no node's.
func (a *Analysis) findExternals(down []bool) {
	t := a.Topology
	a.externals = nil
	a.extSess = make([][]bool, len(a.Classes))
	a.extClaim = make([][]int32, len(a.Classes))
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
	for c := range a.Classes {
		a.extSess[c] = make([]bool, len(a.externals))
		a.extClaim[c] = make([]int32, len(a.externals))
		for x, e := range a.externals {
			a.extClaim[c][x] = noClaim
			if down[c] || !a.Classes[c].has[e.f] {
				continue
			}
			for _, p := range by[e] {
				if a.Classes[c].local[p] {
					a.extSess[c][x], a.extClaim[c][x] = true, int32(p)
					break
				}
			}
		}
	}
}

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
// selects, not over every pair of classes.
func (a *Analysis) expandSessions(f Family, sides [2][][]int, down []bool) {
	t := a.Topology
	k := len(a.Classes)
	if !slices.ContainsFunc(a.Classes, func(c Class) bool { return c.has[f] }) {
		// No node of this family: every row is the same row of falses, shared (read only).
		none := make([]bool, k)
		nobody := make([]int32, k)
		for y := range nobody {
			nobody[y] = noClaim
		}
		a.session[f], a.claim[f], a.oneSided[f] = make([][]bool, k), make([][]int32, k), nil
		for x := range k {
			a.session[f][x], a.claim[f][x] = none, nobody
		}
		return
	}
	conf := make([][]bool, k)
	for x := range conf {
		conf[x] = make([]bool, k)
	}
	mesh := func(x, y int) bool {
		return t.Mesh && a.Classes[x].ClusterID == "" && a.Classes[y].ClusterID == ""
	}
	// confd emits one peering per node and peer address, the first that claims it: global
	// peers (no node, no nodeSelector) first, then node-scoped ones, then the implied reverse
	// sessions. Where two peers of one pass claim the same address confd's order is a map's;
	// rrguard takes them by name. A peering whose AS is not the remote node's never comes up.
	claimed := make([][]bool, k)
	claim := make([][]int32, k)
	for x := range claimed {
		claimed[x] = make([]bool, k)
		claim[x] = make([]int32, k)
		for y := range claim[x] {
			claim[x][y] = noClaim
		}
	}
	var local, remote []int
	members := func(p int) { local, remote = sides[0][p], sides[1][p] }
	for _, global := range []bool{true, false} {
		for p := range t.Peers {
			peer := &t.Peers[p]
			if global != peer.global() {
				continue
			}
			members(p)
			for _, x := range local {
				for _, y := range remote {
					cx, cy := &a.Classes[x], &a.Classes[y]
					// A peering to another port than the node listens on is an address of
					// its own in confd, and never comes up.
					if claimed[x][y] || !peer.forward(f) || BGPPort(peer.port(cy, t.globalAS())) != BGPPort(cy.ListenPort) {
						continue
					}
					claimed[x][y] = true
					claim[x][y] = int32(p)
					// The other end expects the node's own AS: a localASNumber that differs
					// is refused.
					conf[x][y] = (peer.PeerSelector != nil || peer.AS == cy.AS) && (peer.LocalAS == 0 || peer.LocalAS == cx.AS)
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
				if !claimed[y][x] {
					claimed[y][x] = true
					claim[y][x] = int32(p)
					conf[y][x] = true
				}
			}
		}
	}
	// The mesh: its sessions are the pair's whatever a peer also claims (BIRD then has a
	// second protocol for the same neighbour, which stays down), with no filters and the
	// mesh's password on both ends.
	password := func(x, y int) string {
		if c := claim[x][y]; c != noClaim {
			return t.Peers[c].Password
		}
		return ""
	}
	s := make([][]bool, k)
	why := map[[2]int]OneSidedReason{}
	for x := range s {
		s[x] = make([]bool, k)
		if !a.Classes[x].has[f] || down[x] {
			continue
		}
		for y := range s[x] {
			if !a.Classes[y].has[f] || down[y] {
				continue
			}
			if mesh(x, y) {
				s[x][y] = true
				claim[x][y] = noClaim
				continue
			}
			// BGP needs both ends configured, with the same password.
			switch {
			case conf[x][y] && conf[y][x] && password(x, y) == password(y, x):
				s[x][y] = true
			case conf[x][y] && conf[y][x]:
				why[[2]int{x, y}] = PasswordsDiffer
			case (conf[x][y] || claimed[x][y]) && (x != y || len(a.Classes[x].Members) > 1):
				why[[2]int{x, y}] = NotConfiguredBack
			}
		}
	}
	a.session[f], a.claim[f] = s, claim
	// Sessions one end configures (matching or not) that do not come up.
	a.oneSided[f] = nil
	if len(why) > 0 {
		a.oneSided[f] = why
	}
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

// Session reports whether a member of class x and a (different) member of class y have a
// BGP session of family f.
func (a *Analysis) Session(f Family, x, y int) bool { return a.session[f][x][y] }

// SessionCount returns how many BGP sessions (all families, external peers included) a member
// of class c has.
func (a *Analysis) SessionCount(c int) int {
	n := 0
	for _, f := range families {
		for d := range a.Classes {
			if a.session[f][c][d] {
				n += len(a.Classes[d].Members)
				if d == c {
					n--
				}
			}
		}
	}
	for x := range a.externals {
		if a.extSess[c][x] {
			n++
		}
	}
	return n
}

// ReflectorsOf returns the reflector nodes a member of class c is an iBGP route-reflector
// client of (sessions of any family), sorted by name.
func (a *Analysis) ReflectorsOf(c int) []string {
	cc := &a.Classes[c]
	if cc.ClusterID != "" {
		return nil
	}
	var out []string
	for d := range a.Classes {
		cd := &a.Classes[d]
		if cd.ClusterID == "" || cd.AS != cc.AS || (!a.session[IPv4][c][d] && !a.session[IPv6][c][d]) {
			continue
		}
		for _, m := range cd.Members {
			out = append(out, a.Topology.Nodes[m].Name)
		}
	}
	sort.Strings(out)
	return out
}

// Class returns the class of the named node, or NoClass if it takes part in nothing.
func (a *Analysis) Class(name string) ClassID {
	i, ok := a.byName[name]
	if !ok {
		return NoClass
	}
	return a.ClassOf[i]
}

// takesPart reports whether calico-node on n has BGP sessions at all: Ready and with a BGP
// address.
func takesPart(n *Node) bool { return n.Ready && (n.IPv4 != "" || n.IPv6 != "") }

// Learns reports whether node to learns the pod routes of node from (in every family both
// have an address in). Nodes that take part in nothing learn and give nothing: false.
func (a *Analysis) Learns(from, to string) bool {
	x, y := a.Class(from), a.Class(to)
	if x < 0 || y < 0 {
		return false
	}
	for _, f := range families {
		if a.gapSet[Gap{Family: f, From: x, To: y}] {
			return false
		}
	}
	return true
}

// HasGap reports whether routes of class x carried over BGP do not reach class y in family f
// (Gaps).
func (a *Analysis) HasGap(f Family, x, y int) bool { return a.gapSet[Gap{Family: f, From: x, To: y}] }

// Broken reports whether some family's routes of class x do not reach class y.
func (a *Analysis) Broken(x, y int) bool {
	return a.gapSet[Gap{Family: IPv4, From: x, To: y}] || a.gapSet[Gap{Family: IPv6, From: x, To: y}]
}

// PeerMatches returns how many taking-part nodes peer p (an index into Topology.Peers) is
// configured on, and how many it selects as remote.
func (a *Analysis) PeerMatches(p int) (local, remote int) {
	for c := range a.Classes {
		if a.Classes[c].local[p] {
			local += len(a.Classes[c].Members)
		}
		if a.Classes[c].remote[p] {
			remote += len(a.Classes[c].Members)
		}
	}
	return local, remote
}

// PeerMatchCounts returns, for every peer (index into Topology.Peers), what PeerMatches
// returns, in one pass over the classes.
func (a *Analysis) PeerMatchCounts() (local, remote []int) {
	n := len(a.Topology.Peers)
	local, remote = make([]int, n), make([]int, n)
	for c := range a.Classes {
		cl := &a.Classes[c]
		for p := range min(n, len(cl.local), len(cl.remote)) {
			if cl.local[p] {
				local[p] += len(cl.Members)
			}
			if cl.remote[p] {
				remote[p] += len(cl.Members)
			}
		}
	}
	return local, remote
}

// Selects reports whether peer p selects the members of class c as its remote side.
func (a *Analysis) Selects(p, c int) bool { return a.Classes[c].remote[p] }

// Isolated reports whether members of class c have no BGP session at all.
func (a *Analysis) Isolated(c int) bool { return a.SessionCount(c) == 0 }
