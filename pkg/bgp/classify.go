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
	// ips are the peers' peerIPs (a node so named has a signature of its own); the names
	// peers scope themselves to are byName's keys.
	ips map[string]bool
	// sorted are the keys, sorted.
	sorted []string
	// The peers a node's sides are read from (peerHits): those that decide by selector (or
	// apply to every node) are asked for every node; node-scoped ones are looked up by the
	// node's name, peerIP ones by its addresses. With a BGPPeer per node, thousands, a node
	// is asked about its own, not about every one.
	localAsked, remoteAsked []int32
	byName, byIP            map[string][]int32
}

// peerHit is a peer that applies to a node (flags bit 0) or selects it (bit 1).
type peerHit struct {
	p     int32
	flags byte
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
	s := &signatures{t: t, groups: groups, keys: map[string]bool{}, ips: map[string]bool{}}
	add := func(sel *selector.Selector) {
		if sel == nil {
			return
		}
		for _, k := range sel.Keys() {
			s.keys[k] = true
		}
	}
	s.byName, s.byIP = map[string][]int32{}, map[string][]int32{}
	for p := range t.Peers {
		peer := &t.Peers[p]
		add(peer.NodeSelector)
		add(peer.PeerSelector)
		if peer.PeerIP != "" {
			s.ips[peer.PeerIP] = true
		}
		// As appliesTo and selects decide.
		if peer.Node != "" {
			s.byName[peer.Node] = append(s.byName[peer.Node], int32(p))
		} else {
			s.localAsked = append(s.localAsked, int32(p))
		}
		switch {
		case peer.PeerSelector != nil:
			s.remoteAsked = append(s.remoteAsked, int32(p))
		case peer.PeerIP != "":
			s.byIP[peer.PeerIP] = append(s.byIP[peer.PeerIP], int32(p))
		}
	}
	for i := range t.PoolList() {
		add(t.PoolList()[i].NodeSelector)
	}
	s.sorted = slices.Sorted(maps.Keys(s.keys))
	return s
}

// peerHits returns, in out[:0], the peers that apply to node n (of a topology with s's
// peers; l its prepared labels) or select it, by peer index, once each: what appliesTo and
// selects say of every peer, asked only of those that may say yes.
func (s *signatures) peerHits(n *Node, l *selector.Labels, out []peerHit) []peerHit {
	peers := s.t.Peers
	out = out[:0]
	for _, p := range s.localAsked {
		if peers[p].appliesTo(n, l) {
			out = append(out, peerHit{p, 1})
		}
	}
	for _, p := range s.byName[n.Name] {
		out = append(out, peerHit{p, 1})
	}
	for _, p := range s.remoteAsked {
		if peers[p].selects(n, l) {
			out = append(out, peerHit{p, 2})
		}
	}
	for _, ip := range [2]string{n.IPv4, n.IPv6} {
		if ip != "" {
			for _, p := range s.byIP[ip] {
				out = append(out, peerHit{p, 2})
			}
		}
	}
	slices.SortFunc(out, func(x, y peerHit) int { return int(x.p) - int(y.p) })
	// A peer that both applies and selects is there twice: one hit.
	w := 0
	for _, h := range out {
		if w > 0 && out[w-1].p == h.p {
			out[w-1].flags |= h.flags
			continue
		}
		out[w] = h
		w++
	}
	return out[:w]
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
	if len(s.byName[n.Name]) > 0 {
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
	var buf [8]peerHit
	hits := a.signatures().peerHits(n, l, buf[:0])
	cl := Class{Members: []int{i}, classAttrs: &classAttrs{ClusterID: n.ClusterID, AS: t.NodeAS(n), ListenPort: t.listenPort(n), has: [2]bool{n.IPv4 != "", n.IPv6 != ""},
		local: make([]bool, len(t.Peers)), remote: make([]bool, len(t.Peers)), routes: a.groups.nodeRoutes(t, n, l)}}
	for _, h := range hits {
		cl.local[h.p], cl.remote[h.p] = h.flags&1 != 0, h.flags&2 != 0
	}
	kb.Reset()
	if perNode {
		kb.WriteString(n.Name)
		kb.WriteByte(0)
	}
	writeKey(kb, cl.ClusterID, cl.AS, cl.ListenPort, cl.has[IPv4], cl.has[IPv6], hits, cl.routes)
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
	var buf [8]peerHit
	kb.Reset()
	if perNode {
		kb.WriteString(n.Name)
		kb.WriteByte(0)
	}
	writeKey(kb, n.ClusterID, t.NodeAS(n), t.listenPort(n), n.IPv4 != "", n.IPv6 != "", a.signatures().peerHits(n, l, buf[:0]), a.groups.nodeRoutes(t, n, l))
	return kb.String()
}

// key is the class key its members have (see nodeKey).
func (c *Class) key() string {
	var kb strings.Builder
	var hits []peerHit
	for p := range c.local {
		if f := flag(c.local[p]) | flag(c.remote[p])<<1; f != 0 {
			hits = append(hits, peerHit{int32(p), f})
		}
	}
	writeKey(&kb, c.ClusterID, c.AS, c.ListenPort, c.has[IPv4], c.has[IPv6], hits, c.routes)
	return kb.String()
}

// writeKey writes a class key: hits are the peers that apply to the members or select them
// (peerHits), in peer order.
func writeKey(kb *strings.Builder, cid string, as uint32, port uint16, v4, v6 bool, hits []peerHit, routes [2][]int) {
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
	var buf [binary.MaxVarintLen32]byte
	kb.Write(binary.AppendUvarint(buf[:0], uint64(len(hits))))
	for _, h := range hits {
		kb.Write(binary.AppendUvarint(buf[:0], uint64(h.p)))
		kb.WriteByte(h.flags)
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
