package bgp

import (
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
)

// Session is one BGP session calico-node configures on a node: a `protocol bgp` of its
// bird.cfg (IPv4) or bird6.cfg (IPv6).
type Session struct {
	Family Family
	// PeerIP is the neighbor address; PeerNode the Calico node behind it ("" for a router
	// outside the cluster).
	PeerIP   string
	PeerNode string
	// Port is the neighbor port calico-node renders (0: none, BGP's 179).
	Port    uint16
	PeerAS  uint32
	LocalAS uint32
	// RRClient: the node is a reflector and treats the peer as its route-reflector client.
	RRClient bool
	// Source is "mesh" or the name of the BGPPeer the session comes from.
	Source string
	// Established: the other end configures the session back with matching ASes, so it can
	// come up. A router outside the cluster is assumed to.
	Established bool
	// Passive: calico-node waits for the peer to connect (calico-node peers with the higher
	// address, compared as text, wait).
	Passive bool
	// Filters are the BGPFilters this end applies (the BGPPeer's spec.filters; none on the
	// mesh); Password where its password comes from ("" none, see PasswordSource).
	Filters  []string
	Password string
}

// NodeSessions lists the sessions calico-node configures on the named node, sorted by
// family and peer address. A node that takes part in nothing (NotReady, or without a BGP
// address) has none.
func (a *Analysis) NodeSessions(name string) []Session {
	i, ok := a.byName[name]
	if !ok || a.ClassOf[i] < 0 {
		return nil
	}
	t := a.Topology
	n := t.Nodes[i]
	c := a.ClassOf[i]
	localAS := t.NodeAS(n)
	var out []Session
	seen := map[string]bool{}
	// add records a session to address ip; j is the index of the node behind it, -1 for a
	// router outside the cluster. The first session to an address and port wins.
	add := func(f Family, ip string, port uint16, j int, as, local uint32, source string, peer *Peer) {
		key := fmt.Sprint(f, "|", ip, "|", port)
		if ip == "" || ip == n.Address(f) || seen[key] {
			return
		}
		seen[key] = true
		if local == 0 {
			local = localAS
		}
		s := Session{Family: f, PeerIP: ip, Port: port, PeerAS: as, LocalAS: local, Source: source, Established: true, Password: t.MeshPassword}
		if peer != nil {
			s.Filters, s.Password = peer.Filters, peer.Password
		}
		peerCID := ""
		if j >= 0 {
			peer := t.Nodes[j]
			s.PeerNode, peerCID = peer.Name, peer.ClusterID
			s.Established = a.Session(f, c, a.ClassOf[j]) && BGPPort(port) == BGPPort(t.listenPort(peer)) &&
				as == t.NodeAS(peer) && local == localAS
			s.Passive = ip > n.Address(f)
		}
		s.RRClient = n.ClusterID != "" && as == local && peerCID != n.ClusterID
		out = append(out, s)
	}
	// each calls visit for every other node taking part whose class passes match.
	each := func(match func(d int) bool, visit func(j int, m *Node)) {
		for j, m := range t.Nodes {
			if d := a.ClassOf[j]; j != i && d >= 0 && match(d) {
				visit(j, m)
			}
		}
	}
	cl := &a.Classes[c]
	for _, f := range families {
		if n.Address(f) == "" {
			continue
		}
		if t.Mesh && n.ClusterID == "" {
			each(func(d int) bool { return a.Classes[d].ClusterID == "" }, func(j int, m *Node) {
				add(f, m.Address(f), t.listenPort(m), j, t.NodeAS(m), 0, "mesh", nil)
			})
		}
		// confd's order (see expandSessions): global peers, node-scoped ones, then the
		// implied reverse sessions; the first peering to an address wins.
		for _, global := range []bool{true, false} {
			for p := range t.Peers {
				peer := &t.Peers[p]
				if peer.global() != global || !cl.local[p] || !peer.forward(f) {
					continue
				}
				if peer.PeerSelector != nil {
					each(func(d int) bool { return a.Classes[d].remote[p] }, func(j int, m *Node) {
						add(f, m.Address(f), t.listenPort(m), j, t.NodeAS(m), peer.LocalAS, peer.Name, peer)
					})
					continue
				}
				j := slices.IndexFunc(t.Nodes, func(m *Node) bool { return m.IPv4 == peer.PeerIP || m.IPv6 == peer.PeerIP })
				if j >= 0 && a.ClassOf[j] < 0 {
					j = -1 // a node that takes part in nothing answers no session
				}
				as, port := peer.AS, peer.Port
				if j >= 0 {
					port = peer.port(&a.Classes[a.ClassOf[j]], t.globalAS())
				} else if as == 0 {
					as = t.globalAS() // an external peer (see findExternals)
				}
				add(f, peer.PeerIP, port, j, as, peer.LocalAS, peer.Name, peer)
			}
		}
		for p := range t.Peers {
			peer := &t.Peers[p]
			// The reverse side: the peer selects this node (by selector, or by its address
			// with the AS the peer expects), so it peers back with every node the peer
			// applies to.
			if !cl.remote[p] || peer.ReverseManual || !peer.reverse(f, localAS, t.globalAS()) || (peer.PeerSelector == nil && !t.acceptsPort(n, peer.Port)) {
				continue
			}
			each(func(d int) bool { return a.Classes[d].local[p] }, func(j int, m *Node) {
				add(f, m.Address(f), t.listenPort(m), j, t.NodeAS(m), 0, peer.Name, peer)
			})
		}
	}
	slices.SortFunc(out, func(x, y Session) int {
		if x.Family != y.Family {
			return int(x.Family) - int(y.Family)
		}
		return strings.Compare(x.PeerIP, y.PeerIP)
	})
	return out
}

// LearnsIn reports whether node to learns every pod route node from originates in family f
// (both must have an address of f and take part, and from must originate some route in f).
// Unlike Gaps it counts every route, those felix routes without BGP included: it is what
// BIRD's tables hold.
func (a *Analysis) LearnsIn(f Family, from, to string) bool {
	x, y := a.Class(from), a.Class(to)
	if x < 0 || y < 0 || !a.Classes[x].has[f] || !a.Classes[y].has[f] || len(a.Classes[x].routes[f]) == 0 {
		return false
	}
	return len(a.Missing(f, x, y)) == 0
}

// Missing returns the route groups of class from that members of class to do not learn in
// family f (see Group), whatever carries them.
func (a *Analysis) Missing(f Family, from, to int) []int {
	g := a.graphs[f]
	if g == nil || g.before == nil || len(g.standins[from]) == 0 || !a.Classes[to].has[f] || a.others(from, to) == 0 {
		return nil // undecided, or nothing to learn
	}
	var out []int
	for _, o := range g.own[g.standins[from][0]] {
		if !g.before.has(o, to) {
			out = append(out, g.origins[o].group)
		}
	}
	return out
}

// Group returns route group g (an ID from Class.Routes or Missing).
func (a *Analysis) Group(g int) *RouteGroup { return a.groups.at(g) }

// ViaBGP reports whether routes of group g reach pods only through BGP (see Pool.ViaBGP).
func (a *Analysis) ViaBGP(g int) bool { return a.Topology.viaBGP(a.groups.at(g)) }

// Decided reports whether route propagation of family f was decided within the budget.
func (a *Analysis) Decided(f Family) bool {
	return !slices.ContainsFunc(a.Undecided, func(u Undecided) bool { return u.Family == f })
}

// RouterID is the node's BGP router ID: its IPv4 address, or for a node without one a
// hash of its name (what CALICO_ROUTER_ID=hash gives such nodes).
func RouterID(n *Node) string {
	if n.IPv4 != "" {
		return n.IPv4
	}
	h := fnv.New32a()
	h.Write([]byte(n.Name))
	v := h.Sum32()
	return fmt.Sprintf("%d.%d.%d.%d", byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// WriteBIRD writes the part of bird.cfg (IPv4) or bird6.cfg (IPv6) that calico-node renders
// for the node's BGP sessions: the router ID, the bgp_template and one `protocol bgp` per
// session, as Calico's confd templates write them. Filters, kernel and static protocols are
// not part of it; the export filter calls calico_export_to_bgp_peers as Calico's does.
func (a *Analysis) WriteBIRD(w io.Writer, name string, f Family) error {
	i, ok := a.byName[name]
	if !ok {
		return fmt.Errorf("no node %q", name)
	}
	n := a.Topology.Nodes[i]
	var b strings.Builder
	fmt.Fprintf(&b, "# BGP sessions calico-node configures on %s (%s), as rrguard models them\n", n.Name, map[Family]string{IPv4: "bird.cfg", IPv6: "bird6.cfg"}[f])
	if n.Address(f) == "" {
		fmt.Fprintf(&b, "# %s disabled on this node.\n", f)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "router id %s;\n", RouterID(n))
	fmt.Fprintf(&b, `
template bgp bgp_template {
  description "Connection to BGP peer";
  local as %d;
  gateway recursive;
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
`, a.Topology.NodeAS(n))
	for _, s := range a.NodeSessions(name) {
		if s.Family != f {
			continue
		}
		id := strings.NewReplacer(".", "_", ":", "_").Replace(s.PeerIP)
		if s.Port != 0 {
			id += fmt.Sprintf("_port_%d", s.Port)
		}
		kind := "Node"
		if s.Source == "mesh" {
			kind = "Mesh"
		}
		fmt.Fprintf(&b, "\n# %s\nprotocol bgp %s_%s from bgp_template {\n", s.Source, kind, id)
		if s.LocalAS != a.Topology.NodeAS(n) {
			fmt.Fprintf(&b, "  local as %d;\n", s.LocalAS)
		}
		if s.Port != 0 {
			fmt.Fprintf(&b, "  neighbor %s port %d as %d;\n", s.PeerIP, s.Port, s.PeerAS)
		} else {
			fmt.Fprintf(&b, "  neighbor %s as %d;\n", s.PeerIP, s.PeerAS)
		}
		fmt.Fprintf(&b, "  source address %s;\n", n.Address(f))
		if s.Source != "mesh" {
			b.WriteString("  multihop;\n")
		}
		b.WriteString("  import all;\n")
		fmt.Fprintf(&b, "  export filter {\n    calico_export_to_bgp_peers(%v);\n    reject;\n  };\n", s.PeerAS == s.LocalAS)
		if s.Passive {
			b.WriteString("  passive on;\n")
		}
		if s.RRClient {
			fmt.Fprintf(&b, "  rr client;\n  rr cluster id %s;\n", n.ClusterID)
		}
		b.WriteString("}\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
