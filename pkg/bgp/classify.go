package bgp

import (
	"encoding/binary"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rrguard/rrguard/pkg/selector"
)

// Classification: nodes whose relations to every other node are the same (cluster ID, AS,
// listen port, address families, the routes they originate, and for every BGPPeer whether it
// applies to them and selects them) form a class. Nodes with the same signature — the values
// of the labels some selector reads, and what the peers name them by — are placed without
// evaluating a selector again.

func (a *Analysis) classify(perNode bool) {
	t := a.Topology
	a.keys = map[string]ClassID{}
	if a.groups == nil {
		a.groups = newRouteGroups(t)
	}
	var kb strings.Builder
	var sb []byte
	sig := a.signatures()
	bySig := map[string]ClassID{}
	for i := range t.Nodes {
		a.byName[t.Nodes[i].Name] = i
		if perNode {
			a.ClassOf[i] = a.place(i, perNode, &kb, "")
			continue
		}
		// Nodes with the same signature have the same class key: the key is computed once.
		sb = sig.of(t.Nodes[i], sb)
		if c, ok := bySig[string(sb)]; ok && c != NoClass {
			a.Classes[c].Members = append(a.Classes[c].Members, i)
			a.ClassOf[i] = c
			continue
		}
		a.ClassOf[i] = a.place(i, perNode, &kb, "")
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
	// sorted are the keys, sorted.
	sorted []string
}

// sigOnce holds an analysis's signatures, made on first use.
type sigOnce struct {
	once sync.Once
	sigs *signatures
}

// signatures returns the signatures of a's topology (its peers, pools and AS settings),
// made once per sigOnce: analyses derived by WithNode share them.
func (a *Analysis) signatures() *signatures {
	a.sigs.once.Do(func() { a.sigs.sigs = newSignatures(a.Topology, a.groups) })
	return a.sigs.sigs
}

// sameSignature reports whether nodes x and y, of a's topology or one that differs from it
// only in nodes, have the same signature: then they have the same class key.
func (a *Analysis) sameSignature(x, y *Node) bool {
	s := a.signatures()
	var bx, by [256]byte
	return string(s.of(x, bx[:0])) == string(s.of(y, by[:0]))
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

// of appends n's signature to b[:0]. It writes nothing shared: analyses derived from one
// another share their signatures (sameSignature), and requests derive them concurrently.
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
		var buf [16]string
		hits = buf[:0]
		for k := range n.Labels {
			if s.keys[k] {
				hits = append(hits, k)
			}
		}
		sort.Strings(hits)
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
// class (NoClass for a node that takes part in nothing). key is the node's key where the
// caller computed it already (nodeKey), "" otherwise.
func (a *Analysis) place(i int, perNode bool, kb *strings.Builder, key string) ClassID {
	t := a.Topology
	n := t.Nodes[i]
	if !takesPart(n) {
		return NoClass
	}
	if c, ok := a.keys[key]; ok && key != "" {
		a.Classes[c].Members = append(a.Classes[c].Members, i)
		return c
	}
	// The peers' sides are evaluated once, for the key and for the class if it is new.
	l := n.prepared()
	cl := Class{Members: []int{i}, classAttrs: &classAttrs{ClusterID: n.ClusterID, AS: t.NodeAS(n), ListenPort: t.listenPort(n), has: [2]bool{n.IPv4 != "", n.IPv6 != ""},
		local: make([]bool, len(t.Peers)), remote: make([]bool, len(t.Peers)), routes: a.groups.nodeRoutes(t, n, l)}}
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
	key = kb.String()
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
	// The peers that apply to the members or select them, as (index, bits) after their count:
	// with a BGPPeer per node, thousands of peers of which one or two matter per class.
	var hitsBuf [32]uint32
	var flagsBuf [32]byte
	hits, flags := hitsBuf[:0], flagsBuf[:0]
	for p := 0; p < peers; p++ {
		if local, remote := bits(p); local || remote {
			hits = append(hits, uint32(p))
			flags = append(flags, flag(local)|flag(remote)<<1)
		}
	}
	var buf [binary.MaxVarintLen32]byte
	kb.Write(binary.AppendUvarint(buf[:0], uint64(len(hits))))
	for i, p := range hits {
		kb.Write(binary.AppendUvarint(buf[:0], uint64(p)))
		kb.WriteByte(flags[i])
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

// takesPart reports whether calico-node on n has BGP sessions at all: Ready and with a BGP
// address.
func takesPart(n *Node) bool { return n.Ready && (n.IPv4 != "" || n.IPv6 != "") }
