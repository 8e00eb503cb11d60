// Package graph draws the BGP topology rrguard models: nodes, or classes of interchangeable
// nodes at scale, as boxes; the sessions calico-node builds as edges; and what is broken
// (nodes that would not learn each other's routes, single points of failure, isolated nodes)
// in colour. It writes SVG (laid out here, no external program), Graphviz dot, JSON, and one
// self-contained HTML page with the findings; with two states it draws what a change adds
// and removes.
package graph

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/rrguard/rrguard/pkg/bgp"
)

const (
	// DefaultThreshold is the cluster size up to which every node is drawn on its own.
	DefaultThreshold = 40
	// MaxReflectorBoxes is the number of reflectors up to which each reflector is drawn on
	// its own in a larger cluster; with more, reflectors are drawn by class too.
	MaxReflectorBoxes = 40
	// MaxBoxes bounds the picture: a topology that needs more boxes (thousands of classes,
	// say one AS per node) is refused with advice rather than drawn unreadably slowly.
	MaxBoxes = 400
	// MaxLines bounds the lines drawn (sessions and missing routes); JSON keeps them all.
	MaxLines  = 3000
	zoneLabel = "topology.kubernetes.io/zone"
)

// Options choose what is drawn on its own.
type Options struct {
	// Nodes are drawn each in a box of its own, whatever the cluster's size (--node).
	Nodes []string
	// Threshold: clusters of at most this many nodes are drawn node by node (0: DefaultThreshold).
	Threshold int
}

// Roles of a box.
const (
	RoleReflector = "reflector"
	RoleClient    = "client"   // a route-reflector client: has a session with some reflector
	RoleNode      = "node"     // neither: a mesh or plain peering member
	RoleIdle      = "idle"     // takes part in nothing (NotReady, or no BGP address)
	RoleExternal  = "external" // a BGP router outside the cluster (a peerIP BGPPeer)
)

// Changes a review draws: what exists only after the change, or only before it.
const (
	Added   = "added"
	Removed = "removed"
	// Lost and Restored mark missing routes the change opens, or closes.
	Lost     = "lost"
	Restored = "restored"
)

// Graph is the picture of one state, or of a change (before and after).
type Graph struct {
	// Summary is one line about the cluster: nodes, reflectors, mesh, AS; in a review, after
	// the change, and SummaryBefore before it.
	Summary       string     `json:"summary"`
	SummaryBefore string     `json:"summaryBefore,omitempty"`
	Review        bool       `json:"review,omitempty"`
	Boxes         []*Box     `json:"boxes"`
	Sessions      []*Session `json:"sessions"`
	// Missing lists, per ordered pair of boxes, the routes that do not travel.
	Missing []*Missing `json:"missing"`
	// Undecided lists the families whose route propagation rrguard could not decide within
	// its budget: Missing says nothing about them.
	Undecided []string `json:"undecided,omitempty"`

	byID  map[string]*Box
	boxOf map[string]*Box // node name → its box
	// taking is the number of nodes taking part in BGP (in the state drawn, or after).
	taking int
	width  float64
	height float64
	// legendY is where the legend starts.
	legendY float64
}

// Box is one node, one class of interchangeable nodes, or one router outside the cluster.
type Box struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// Members are the node names the box stands for (one for a node's own box).
	Members   []string `json:"members"`
	Role      string   `json:"role"`
	ClusterID string   `json:"clusterID,omitempty"`
	AS        uint32   `json:"as,omitempty"`
	// Isolated: the members have no BGP session that comes up.
	Isolated bool `json:"isolated,omitempty"`
	// Misses is how many other nodes' pod routes the members do not learn.
	Misses int `json:"misses,omitempty"`
	// SinglePoint: the failure of this reflector alone would cut routes that flow now.
	SinglePoint bool   `json:"singlePoint,omitempty"`
	Change      string `json:"change,omitempty"`

	class     bool // a class box (members listed apart in HTML)
	band, row int
	x, y, w   float64 // centre and width
	lines     []string
}

// Session is one line between two boxes: the BGP sessions between their members (From ==
// To: among the members of a class box).
type Session struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Kind is mesh, bgppeer or rr-client (a reflector and its client).
	Kind string `json:"kind"`
	// Sources are "mesh" and the BGPPeers the sessions come from.
	Sources  []string `json:"sources"`
	Families []string `json:"families"`
	// OneSided: one end configures the sessions, the other does not (or not with the AS and
	// port used): they stay Idle and carry no routes.
	OneSided bool `json:"oneSided,omitempty"`
	// Filters are the BGPFilters the ends apply (BGPPeers' spec.filters).
	Filters []string `json:"filters,omitempty"`
	Change  string   `json:"change,omitempty"`
}

// Missing says that the members of To do not learn the pod routes of the members of From.
type Missing struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Families []string `json:"families"`
	Change   string   `json:"change,omitempty"`
}

// Session kinds.
const (
	KindMesh     = "mesh"
	KindBGPPeer  = "bgppeer"
	KindRRClient = "rr-client"
)

// Build draws one state.
func Build(a *bgp.Analysis, opt Options) (*Graph, error) {
	return build([]*bgp.Analysis{a}, opt)
}

// Compare draws a change: the boxes are the nodes' classes before and after together, the
// sessions and missing routes the change adds or removes are marked, the boxes' state is the
// one after.
func Compare(before, after *bgp.Analysis, opt Options) (*Graph, error) {
	return build([]*bgp.Analysis{before, after}, opt)
}

// Box returns the box of the given ID, nil if none.
func (g *Graph) Box(id string) *Box { return g.byID[id] }

// BoxOf returns the box a node is drawn in, nil if none.
func (g *Graph) BoxOf(node string) *Box { return g.boxOf[node] }

// NodeID is the HTML/SVG id of a node: of its own box, or of its entry in its class's list.
func NodeID(name string) string { return "node-" + name }

// state is one analysis with its node index.
type state struct {
	a     *bgp.Analysis
	index map[string]int
}

// classOf is the node's class in s: -1 taking part in nothing, -2 absent.
func (s *state) classOf(name string) int {
	i, ok := s.index[name]
	if !ok {
		return -2
	}
	return s.a.ClassOf[i]
}

func (s *state) node(name string) *bgp.Node {
	if i, ok := s.index[name]; ok {
		return s.a.Topology.Nodes[i]
	}
	return nil
}

// builder holds what build works with.
type builder struct {
	g      *Graph
	states []*state
	boxOf  map[string]*Box // node name → box
	// key of a box: its members' classes in each state (-1 taking part in nothing, -2
	// absent). Boxes split classes further only where nodes are drawn on their own.
	key map[*Box][2]int
}

func build(analyses []*bgp.Analysis, opt Options) (*Graph, error) {
	b := &builder{g: &Graph{Review: len(analyses) == 2, byID: map[string]*Box{}}, boxOf: map[string]*Box{}, key: map[*Box][2]int{}}
	var names []string
	seen := map[string]bool{}
	for _, a := range analyses {
		s := &state{a: a, index: make(map[string]int, len(a.Topology.Nodes))}
		for i, n := range a.Topology.Nodes {
			s.index[n.Name] = i
			if !seen[n.Name] {
				seen[n.Name] = true
				names = append(names, n.Name)
			}
		}
		b.states = append(b.states, s)
	}
	slices.Sort(names)
	for _, n := range opt.Nodes {
		if !seen[n] {
			return nil, fmt.Errorf("--node %s: no such node in the input", n)
		}
	}
	if err := b.boxes(names, opt); err != nil {
		return nil, err
	}
	b.g.boxOf = b.boxOf
	b.describe()
	b.sessions()
	if len(b.g.Boxes) > MaxBoxes {
		return nil, fmt.Errorf("the cluster and the routers outside it that it peers with need %d boxes to draw, more than %d: too many to read; list sessions with rrguard sessions -o json", len(b.g.Boxes), MaxBoxes)
	}
	b.missing()
	b.status()
	b.g.Summary = b.summary(len(b.states)-1, len(names))
	if b.g.Review {
		b.g.SummaryBefore = b.summary(0, len(b.states[0].index))
	}
	cur := b.states[len(b.states)-1].a
	for _, c := range cur.ClassOf {
		if c >= 0 {
			b.g.taking++
		}
	}
	for _, u := range cur.Undecided {
		b.g.Undecided = append(b.g.Undecided, u.Family.String()+": "+u.Reason)
	}
	b.g.layout()
	return b.g, nil
}

// boxes partitions the nodes: on their own in a small cluster, for named nodes and for
// reflectors while they are few; the rest by their classes in every state.
func (b *builder) boxes(names []string, opt Options) error {
	threshold := cmp.Or(opt.Threshold, DefaultThreshold)
	named := map[string]bool{}
	for _, n := range opt.Nodes {
		named[n] = true
	}
	reflectors := 0
	for _, n := range names {
		if b.reflector(n) {
			reflectors++
		}
	}
	byKey := map[[2]int]*Box{}
	for _, n := range names {
		var key [2]int
		for k, s := range b.states {
			key[k] = s.classOf(n)
		}
		own := len(names) <= threshold || named[n] || (reflectors <= MaxReflectorBoxes && b.reflector(n))
		if own {
			box := &Box{ID: NodeID(n), Label: n, Members: []string{n}}
			b.add(box, key)
			b.boxOf[n] = box
			continue
		}
		box := byKey[key]
		if box == nil {
			box = &Box{ID: "class-" + strconv.Itoa(len(byKey)+1), class: true}
			byKey[key] = box
			b.add(box, key)
		}
		box.Members = append(box.Members, n)
		b.boxOf[n] = box
		if len(b.g.Boxes) > MaxBoxes {
			break
		}
	}
	if len(b.g.Boxes) > MaxBoxes {
		return fmt.Errorf("the cluster needs more than %d boxes (classes of interchangeable nodes and nodes drawn on their own) to draw: too many to read; name fewer nodes with --node, or list sessions with rrguard sessions -o json", MaxBoxes)
	}
	return nil
}

func (b *builder) add(box *Box, key [2]int) {
	b.g.Boxes = append(b.g.Boxes, box)
	b.g.byID[box.ID] = box
	b.key[box] = key
}

// reflector reports whether the node holds a cluster ID in some state.
func (b *builder) reflector(name string) bool {
	for _, s := range b.states {
		if n := s.node(name); n != nil && n.ClusterID != "" {
			return true
		}
	}
	return false
}

// current is the last state that holds the box's members, and their class there.
func (b *builder) current(box *Box) (*state, int) {
	key := b.key[box]
	for k := len(b.states) - 1; k >= 0; k-- {
		if key[k] != -2 {
			return b.states[k], key[k]
		}
	}
	return b.states[0], key[0]
}

// describe fills each box's role, cluster ID, AS, label and review change.
func (b *builder) describe() {
	for _, box := range b.g.Boxes {
		s, c := b.current(box)
		n := s.node(box.Members[0])
		box.ClusterID, box.AS = n.ClusterID, s.a.Topology.NodeAS(n)
		switch {
		case c < 0:
			box.Role = RoleIdle
		case n.ClusterID != "":
			box.Role = RoleReflector
		case len(s.a.ReflectorsOf(c)) > 0:
			box.Role = RoleClient
		default:
			box.Role = RoleNode
		}
		if len(b.states) == 2 {
			key := b.key[box]
			switch {
			case key[0] == -2:
				box.Change = Added
			case key[1] == -2:
				box.Change = Removed
			}
		}
		if box.class {
			box.Label = classLabel(box, s)
		}
	}
}

// classLabel says what a class box holds: "4,980 clients, zone a".
func classLabel(box *Box, s *state) string {
	noun := map[string][2]string{RoleReflector: {"reflector", "reflectors"}, RoleClient: {"client", "clients"},
		RoleNode: {"node", "nodes"}, RoleIdle: {"node without BGP", "nodes without BGP"}}[box.Role]
	word := noun[1]
	if len(box.Members) == 1 {
		word = noun[0]
	}
	label := thousands(len(box.Members)) + " " + word
	zone, same := "", true
	for i, m := range box.Members {
		z := s.node(m).Labels[zoneLabel]
		if i == 0 {
			zone = z
		} else if z != zone {
			same = false
			break
		}
	}
	if same && zone != "" {
		label += ", zone " + zone
	}
	return label
}

// thousands writes n with thousands separators: 4,980.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

type sessionKey struct {
	lo, hi      string
	established bool
}

type sessionAcc struct {
	sources, families, filters map[string]bool
	rrClient                   bool
}

// sessions draws the sessions of one member per box (members of a class are
// interchangeable): one line per pair of boxes and whether the sessions come up, per state.
func (b *builder) sessions() {
	per := make([]map[sessionKey]*sessionAcc, len(b.states))
	for k, s := range b.states {
		acc := map[sessionKey]*sessionAcc{}
		for _, box := range slices.Clone(b.g.Boxes) {
			if b.key[box][k] < 0 {
				continue
			}
			rep := box.Members[0]
			for _, se := range s.a.NodeSessions(rep) {
				var peer *Box
				if se.PeerNode != "" {
					peer = b.boxOf[se.PeerNode]
				} else {
					peer = b.external(se.PeerIP, se.PeerAS)
				}
				key := sessionKey{lo: box.ID, hi: peer.ID, established: se.Established}
				if key.hi < key.lo {
					key.lo, key.hi = key.hi, key.lo
				}
				x := acc[key]
				if x == nil {
					x = &sessionAcc{sources: map[string]bool{}, families: map[string]bool{}, filters: map[string]bool{}}
					acc[key] = x
				}
				x.sources[se.Source] = true
				x.families[se.Family.String()] = true
				for _, f := range se.Filters {
					x.filters[f] = true
				}
				x.rrClient = x.rrClient || se.RRClient
			}
		}
		per[k] = acc
	}
	last := per[len(per)-1]
	keys := map[sessionKey]bool{}
	for _, acc := range per {
		for k := range acc {
			keys[k] = true
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(keys), func(x, y sessionKey) int {
		return cmp.Or(cmp.Compare(x.lo, y.lo), cmp.Compare(x.hi, y.hi), cmp.Compare(fmt.Sprint(x.established), fmt.Sprint(y.established)))
	}) {
		x, change := last[k], ""
		if len(per) == 2 {
			switch {
			case per[0][k] == nil:
				change = Added
			case per[1][k] == nil:
				x, change = per[0][k], Removed
			}
		}
		kind := KindBGPPeer
		switch {
		case x.rrClient:
			kind = KindRRClient
		case len(x.sources) == 1 && x.sources["mesh"]:
			kind = KindMesh
		}
		b.g.Sessions = append(b.g.Sessions, &Session{From: k.lo, To: k.hi, Kind: kind, Sources: slices.Sorted(maps.Keys(x.sources)),
			Families: slices.Sorted(maps.Keys(x.families)), OneSided: !k.established, Filters: slices.Sorted(maps.Keys(x.filters)), Change: change})
	}
}

// external returns the box of a router outside the cluster, creating it.
func (b *builder) external(ip string, as uint32) *Box {
	id := "router-" + ip
	if box := b.g.byID[id]; box != nil {
		return box
	}
	box := &Box{ID: id, Label: ip, Role: RoleExternal, AS: as}
	b.g.Boxes = append(b.g.Boxes, box)
	b.g.byID[id] = box
	b.key[box] = [2]int{-3, -3}
	return box
}

type missingKey struct{ from, to string }

// missing lists, per state, the ordered pairs of boxes whose routes do not travel (per
// family), and what the change does to them.
func (b *builder) missing() {
	per := make([]map[missingKey][]string, len(b.states))
	for k, s := range b.states {
		acc := map[missingKey][]string{}
		var part []*Box
		for _, box := range b.g.Boxes {
			if b.key[box][k] >= 0 {
				part = append(part, box)
			}
		}
		for _, from := range part {
			for _, to := range part {
				if from == to && len(from.Members) == 1 {
					continue
				}
				x, y := b.key[from][k], b.key[to][k]
				for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
					if s.a.Classes[x].HasFamily(f) && s.a.Classes[y].HasFamily(f) && !s.a.LearnsIn(f, from.Members[0], to.Members[0]) {
						key := missingKey{from.ID, to.ID}
						acc[key] = append(acc[key], f.String())
					}
				}
			}
		}
		per[k] = acc
	}
	keys := map[missingKey]bool{}
	for _, acc := range per {
		for k := range acc {
			keys[k] = true
		}
	}
	last := per[len(per)-1]
	for _, k := range slices.SortedFunc(maps.Keys(keys), func(x, y missingKey) int {
		return cmp.Or(cmp.Compare(x.from, y.from), cmp.Compare(x.to, y.to))
	}) {
		fams, change := last[k], ""
		if len(per) == 2 {
			switch {
			case per[0][k] == nil:
				change = Lost
			case per[1][k] == nil:
				fams, change = per[0][k], Restored
			}
		}
		b.g.Missing = append(b.g.Missing, &Missing{From: k.from, To: k.to, Families: fams, Change: change})
	}
}

// status marks isolated boxes, the routes each box misses, and single points of failure, in
// the last state.
func (b *builder) status() {
	k := len(b.states) - 1
	s := b.states[k]
	for _, m := range b.g.Missing {
		if m.Change == Restored {
			continue
		}
		from, to := b.g.byID[m.From], b.g.byID[m.To]
		if n := len(from.Members); from == to {
			to.Misses += n - 1
		} else {
			to.Misses += n
		}
	}
	single := map[int]bool{}
	for c := range s.a.Classes {
		cl := &s.a.Classes[c]
		if cl.ClusterID == "" || len(cl.Members) == 0 {
			continue
		}
		gaps, _ := s.a.LostIfDown(c)
		for _, gap := range gaps {
			if !s.a.Broken(gap.From, gap.To) {
				single[c] = true
				break
			}
		}
	}
	for _, box := range b.g.Boxes {
		c := b.key[box][k]
		if c < 0 {
			continue
		}
		box.Isolated = s.a.Isolated(c)
		box.SinglePoint = single[c]
	}
}

// summary describes state k, of the given number of nodes.
func (b *builder) summary(k, nodes int) string {
	t := b.states[k].a.Topology
	reflectors := 0
	for _, n := range t.Nodes {
		if n.ClusterID != "" {
			reflectors++
		}
	}
	mesh := "mesh off"
	if t.Mesh {
		mesh = "mesh on"
	}
	return fmt.Sprintf("%s, %s, %s, AS %d", count(nodes, "node"), count(reflectors, "reflector"), mesh, cmp.Or(t.AS, bgp.DefaultAS))
}

// count says "1 node", "4,980 nodes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}

// status says in a few words what is wrong with a box ("" when nothing).
func (box *Box) status(total int) string {
	var parts []string
	switch {
	case box.Role == RoleIdle:
		parts = append(parts, "no BGP (NotReady or no address)")
	case box.Isolated:
		parts = append(parts, "isolated: no BGP session")
	case box.Misses > 0 && box.Misses >= total-1:
		parts = append(parts, "cut off: learns no routes")
	case box.Misses > 0:
		parts = append(parts, "misses routes of "+thousands(box.Misses))
	}
	if box.SinglePoint {
		parts = append(parts, "single point of failure")
	}
	return strings.Join(parts, "; ")
}
