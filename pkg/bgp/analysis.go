package bgp

import (
	"iter"
	"slices"
	"sort"
)

// ClassID identifies a class of an analysis: an index into Analysis.Classes, or NoClass.
type ClassID = int

// NoClass is the class of a node that takes part in nothing (NotReady, or without a BGP
// address).
const NoClass ClassID = -1

// Class is a set of nodes that calico-node treats identically: same cluster ID, AS, address
// families, and the same matches for every BGPPeer. Members are indexes into Topology.Nodes;
// ClusterID, AS and ListenPort (see classAttrs) are what the members share.
type Class struct {
	Members []int
	// The attributes are shared by the classes of the analyses derived from one another
	// while they stay the same (never written once shared: a change is a new classAttrs), so
	// that a derived analysis copies a small Class per class, not every attribute.
	*classAttrs
}

// classAttrs is what a class's members share.
type classAttrs struct {
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

// withSides returns c with attributes of its own, their per-peer columns copied, for the
// caller to write.
func (c Class) withSides() Class {
	attrs := *c.classAttrs
	attrs.local, attrs.remote = slices.Clone(attrs.local), slices.Clone(attrs.remote)
	c.classAttrs = &attrs
	return c
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
	// Undecided lists the families whose propagation exceeded the budget: for them Gaps
	// says nothing (no gap is reported, none is ruled out).
	Undecided []Undecided

	byName map[string]int     // node name → index into Topology.Nodes
	keys   map[string]ClassID // class key → a class with that key (see incremental.go)
	labels *labelIndex        // the nodes by label value, shared by analyses of the same nodes
	// sigs are the node signatures of the topology's peers and pools (classify.go), made
	// once and shared by the analyses WithNode derives (they have the same peers and pools).
	sigs      *sigOnce
	externals []external
	// session[f][a] has bit b set when a member of class a has a session with every member
	// of class b (for a == b: with every other member); a nil row has none (Session).
	session [2][][]uint64
	// ext[c] lists class c's sessions with routers outside the cluster, by external.
	ext [][]extSession
	// meshed[f] has bit c set when the members of class c are in the node-to-node mesh of
	// family f (nil: the mesh is off); every pair of meshed classes has a session, the
	// mesh's. Those sessions are not in session[f] (a million class pairs at 1,000 classes):
	// Session and sessionsFrom add them.
	meshed [2][]uint64
	// sides[0][p] lists the classes peer p applies to, sides[1][p] those it selects as
	// remote, in class order (peerSides).
	sides [2][][]int
	// oneSided[f] holds the class pairs (a, b) where a member of a configures a session of
	// family f to a member of b that does not come up, and why (see OneSided).
	oneSided [2]map[[2]int]OneSidedReason
	// claim[f][a] holds, per class b toward which a member of a configures a peering in
	// family f, the peer (index into Topology.Peers) it uses: the one whose filters and
	// password that end uses. A pair with a mesh session, or no peering, has none (claimOf:
	// noClaim).
	claim [2][]claimRow
	// groups are the route groups of the nodes' routes.
	groups *routeGroups
	// gaps[f][x] has bit y set where routes of class x carried over BGP do not reach the
	// members of class y in family f (nil rows: none); gapCount counts them, families
	// together. Bits, not a list or a map: with thousands of classes (a BGPPeer per node)
	// the pairs are millions.
	gaps     [2][][]uint64
	gapCount int
	graphs   [2]*sessionGraph // the session graph of each family, kept for LostIfDown
	// base is the analysis this one is derived from, while finish runs: where a family's
	// session graph comes out the same as base's, its propagation is base's.
	base   *Analysis
	budget Budget
	whatIf *whatIfs // what LostIfDown may still spend
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
func AnalyzeWithin(t *Topology, b Budget) *Analysis { return analyzeWith(t, b) }

func analyzeWith(t *Topology, b Budget) *Analysis {
	a := newAnalysis(t, b)
	a.classify(false)
	a.finish()
	return a
}

// analyze with perNode puts every node in a class of its own: the plain per-node simulation
// that the class reduction must agree with (tests compare the two).
func analyze(t *Topology, perNode bool) *Analysis {
	a := newAnalysis(t, DefaultBudget)
	a.classify(perNode)
	a.finish()
	return a
}

// newAnalysis is the one constructor of a fresh analysis, before classification.
func newAnalysis(t *Topology, b Budget) *Analysis {
	return &Analysis{Topology: t, ClassOf: make([]ClassID, len(t.Nodes)), byName: make(map[string]int, len(t.Nodes)), budget: b, labels: &labelIndex{}, sigs: &sigOnce{}}
}

// derive is the one constructor of an analysis derived from a (incremental.go): it shares
// a's node index, budget, label index and route groups; the caller sets the rest.
func (a *Analysis) derive(t *Topology) *Analysis {
	return &Analysis{Topology: t, byName: a.byName, budget: a.budget, labels: a.labels, groups: a.groups, sigs: &sigOnce{}}
}

// finish expands sessions and simulates propagation over the classes.
func (a *Analysis) finish() {
	if a.sides[0] == nil { // else withPeersInPlace made them
		local, remote := a.peerSides()
		a.sides = [2][][]int{local, remote}
	}
	local, remote := a.sides[0], a.sides[1]
	down := a.downClasses(local)
	a.findExternals(down)
	for _, f := range families {
		a.expandSessions(f, [2][][]int{local, remote}, down)
	}
	a.gaps, a.gapCount, a.Undecided, a.graphs = [2][][]uint64{}, 0, nil, [2]*sessionGraph{}
	if a.budget == (Budget{}) {
		a.budget = DefaultBudget
	}
	a.whatIf = &whatIfs{}
	a.whatIf.steps.Store(int64(a.budget.MaxSteps))
	for _, f := range families {
		a.propagate(f)
	}
	a.base = nil // an analysis derived from this one must not keep every one before alive
}

// SessionCount returns how many BGP sessions (all families, external peers included) a member
// of class c has.
func (a *Analysis) SessionCount(c int) int {
	n := 0
	for _, f := range families {
		for d := range a.sessionsFrom(f, c, 0) {
			n += len(a.Classes[d].Members)
			if d == c {
				n--
			}
		}
	}
	return n + len(a.ext[c])
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
		if cd.ClusterID == "" || cd.AS != cc.AS || !a.Peered(c, d) {
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

// Learns reports whether node to learns the pod routes of node from (in every family both
// have an address in). Nodes that take part in nothing learn and give nothing: false.
func (a *Analysis) Learns(from, to string) bool {
	x, y := a.Class(from), a.Class(to)
	if x < 0 || y < 0 {
		return false
	}
	return !a.Broken(x, y)
}

// HasGap reports whether routes of class x carried over BGP do not reach class y in family f
// (Gaps).
func (a *Analysis) HasGap(f Family, x, y int) bool {
	rows := a.gaps[f]
	return x < len(rows) && rows[x] != nil && has(rows[x], y)
}

// Broken reports whether some family's routes of class x do not reach class y.
func (a *Analysis) Broken(x, y int) bool {
	return a.HasGap(IPv4, x, y) || a.HasGap(IPv6, x, y)
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
	for p := range min(n, len(a.sides[0]), len(a.sides[1])) {
		for _, c := range a.sides[0][p] {
			local[p] += len(a.Classes[c].Members)
		}
		for _, c := range a.sides[1][p] {
			remote[p] += len(a.Classes[c].Members)
		}
	}
	return local, remote
}

// SelectedClasses lists the classes peer p selects as its remote side, in class order.
func (a *Analysis) SelectedClasses(p int) []int {
	if p >= len(a.sides[1]) {
		return nil
	}
	return a.sides[1][p]
}

// Isolated reports whether members of class c have no BGP session at all.
func (a *Analysis) Isolated(c int) bool {
	for _, f := range families {
		for d := range a.sessionsFrom(f, c, 0) {
			if d != c || len(a.Classes[c].Members) > 1 {
				return false
			}
		}
	}
	return len(a.ext[c]) == 0
}

// Gaps yields, per family, the class pairs whose routes carried over BGP do not propagate:
// members of To do not learn them from members of From (for From == To: from the other
// members), in class order.
func (a *Analysis) Gaps() iter.Seq[Gap] {
	return func(yield func(Gap) bool) {
		for _, f := range families {
			for x, row := range a.gaps[f] {
				for y := range bitsFrom(row, 0) {
					if !yield(Gap{Family: f, From: x, To: y}) {
						return
					}
				}
			}
		}
	}
}

// GapCount is how many gaps Gaps yields.
func (a *Analysis) GapCount() int { return a.gapCount }
