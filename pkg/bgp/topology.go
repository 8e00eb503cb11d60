// Package bgp models what calico-node builds from the Calico resources: the BGP sessions
// between nodes (node-to-node mesh, global and node-scoped BGPPeers expanded through their
// selectors, route-reflector client marking) and which node learns which other node's pod
// routes once iBGP route reflection has run over those sessions.
//
// Nodes whose relations to every other node are the same (same cluster ID, AS, address
// families and the same BGPPeer selector matches) behave identically, so the model works on
// those classes of nodes instead of on every node: a 5,000-node cluster with a handful of
// reflectors is a handful of classes.
package bgp

import (
	"net/netip"

	"github.com/rrguard/rrguard/pkg/selector"
)

// DefaultAS is the AS number Calico uses when no BGPConfiguration sets one.
const DefaultAS uint32 = 64512

// Family is an address family: pod routes of each family travel over sessions of that family.
type Family uint8

// The address families.
const (
	IPv4 Family = iota
	IPv6
)

var families = [...]Family{IPv4, IPv6}

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// Node is a Calico node as calico-node sees it.
type Node struct {
	Name string
	// Labels is the Calico label set: Kubernetes labels merged with projectcalico.org/labels.
	Labels map[string]string
	// ClusterID is the route-reflector cluster ID; "" means the node is not a reflector.
	ClusterID string
	// AS is the node's own AS number; 0 means the global one.
	AS uint32
	// IPv4 and IPv6 are the BGP addresses without their mask; "" means none.
	IPv4, IPv6 string
	// Ready is false only for a node whose Ready condition is explicitly False or Unknown.
	Ready bool
	// Prepared is Labels prepared for selector evaluation (see selector.NewLabels); built
	// on first use when nil. Build it once per node when the node is reused across analyses.
	Prepared *selector.Labels
	// Blocks are the IPAM blocks the node holds (its block affinities).
	Blocks []Block
}

func (n *Node) prepared() *selector.Labels {
	if n.Prepared == nil {
		return selector.NewLabels(n.Labels)
	}
	return n.Prepared
}

// Address returns the node's BGP address of family f ("" if none).
func (n *Node) Address(f Family) string {
	if f == IPv6 {
		return n.IPv6
	}
	return n.IPv4
}

// IsReflector reports whether the node holds a route-reflector cluster ID.
func (n *Node) IsReflector() bool { return n.ClusterID != "" }

// Peer is a BGPPeer reduced to what decides sessions.
type Peer struct {
	Name string
	// Node scopes the peer to one node by name.
	Node string
	// NodeSelector scopes the peer to the nodes it selects. nil with Node == "" means every node.
	// A selector that did not parse is the zero Selector and selects nothing, as in calico-node.
	NodeSelector *selector.Selector
	// PeerIP is the remote address without port ("" when PeerSelector is used).
	PeerIP string
	// PeerSelector selects the remote nodes.
	PeerSelector *selector.Selector
	// AS is the remote AS for a PeerIP peer (0: the global AS).
	AS uint32
	// ReverseManual is reversePeering: Manual: the remote side is not configured implicitly.
	ReverseManual bool
	// Port is the port of a peerIP written address:port (0: none given).
	Port uint16
	// LocalAS is localASNumber: the AS the nodes the peer applies to speak on its sessions
	// (0: their own).
	LocalAS uint32
	// Filters are the names of the BGPFilters of its peerings (spec.filters), in order; confd
	// puts them on both ends of every peering the peer gives, reverse ones included.
	Filters []string
	// Password is where its peerings' password comes from ("" none; see PasswordSource).
	Password string
}

// Topology is the cluster state that decides BGP sessions.
type Topology struct {
	Nodes []*Node
	Peers []Peer
	// Mesh is the node-to-node mesh setting of the default BGPConfiguration.
	Mesh bool
	// AS is the global AS number (DefaultAS when unset).
	AS uint32
	// ListenPort is the default BGPConfiguration's listenPort, ListenPorts the node.<name>
	// ones (0 / absent: not set; BIRD then listens on 179).
	ListenPort  uint16
	ListenPorts map[string]uint16
	// Pools are the IPPools (AssumedPools when the state has none).
	Pools []Pool
	// Filters are the BGPFilters by name.
	Filters map[string]*Filter
	// MeshPassword is where the mesh sessions' password comes from ("" none).
	MeshPassword string
}

// PasswordSource names a password by where it is read from, a Secret's key: two ends that
// read their password from the same key agree, whatever its content; rrguard never reads it.
func PasswordSource(secret, key string) string {
	if secret == "" && key == "" {
		return ""
	}
	return "secret " + secret + " key " + key
}

// filters returns the BGPFilters of peer p (index into Peers; -1: the mesh, which has none)
// that exist, in order; confd skips a name with no BGPFilter.
func (t *Topology) filters(p int) []*Filter {
	if p < 0 {
		return nil
	}
	var out []*Filter
	for _, name := range t.Peers[p].Filters {
		if fl := t.Filters[name]; fl != nil {
			out = append(out, fl)
		}
	}
	return out
}

// listenPort is the port calico-node renders for sessions toward node n (0: none, 179).
func (t *Topology) listenPort(n *Node) uint16 {
	if p, ok := t.ListenPorts[n.Name]; ok {
		return p
	}
	return t.ListenPort
}

// acceptsPort reports whether confd's reverse peering of a peerIP with port reaches node n
// (nodesWithIPPortAndAS: a port is compared with the node's own listen port when it has
// one, and with the global one when that is set).
func (t *Topology) acceptsPort(n *Node, port uint16) bool {
	if port == 0 {
		return true
	}
	if p, ok := t.ListenPorts[n.Name]; ok && p != port {
		return false
	}
	return t.ListenPort == 0 || t.ListenPort == port
}

// BGPPort is the port a node listens on.
func BGPPort(p uint16) uint16 {
	if p == 0 {
		return 179
	}
	return p
}

// NodeAS returns the AS a node speaks with.
func (t *Topology) NodeAS(n *Node) uint32 {
	if n.AS != 0 {
		return n.AS
	}
	return t.globalAS()
}

func (t *Topology) globalAS() uint32 {
	if t.AS == 0 {
		return DefaultAS
	}
	return t.AS
}

// appliesTo reports whether the peer is configured on node n (its local side).
func (p *Peer) appliesTo(n *Node, l *selector.Labels) bool {
	switch {
	case p.Node != "":
		return p.Node == n.Name
	case p.NodeSelector != nil:
		return p.NodeSelector.Matches(l)
	default:
		return true
	}
}

// selects reports whether the peer names node n as its remote side (by selector or address).
func (p *Peer) selects(n *Node, l *selector.Labels) bool {
	switch {
	case p.PeerSelector != nil:
		return p.PeerSelector.Matches(l)
	case p.PeerIP != "":
		return p.PeerIP == n.IPv4 || p.PeerIP == n.IPv6
	default:
		return false
	}
}

// global reports whether confd treats the peer as global (it applies to every node), whose
// peerings win over node-scoped ones to the same address.
func (p *Peer) global() bool { return p.Node == "" && p.NodeSelector == nil }

// forward reports whether the peer gives the nodes it applies to a peering of family f to
// the nodes it selects: always for a selector, for a peerIP of that family (with any AS: a
// wrong one is configured but never comes up).
func (p *Peer) forward(f Family) bool {
	if p.PeerSelector != nil {
		return true
	}
	pf, ok := ipFamily(p.PeerIP)
	return ok && pf == f
}

// port is the port confd renders for the peer's peering toward a member of class y: a
// selector's and a peerIP's without port that names a node of the AS it expects take the
// node's listen port.
func (p *Peer) port(y *Class, globalAS uint32) uint16 {
	if p.PeerSelector == nil && p.Port != 0 {
		return p.Port
	}
	if p.PeerSelector == nil {
		want := p.AS
		if want == 0 {
			want = globalAS
		}
		if want != y.AS {
			return 0
		}
	}
	return y.ListenPort
}

// reverse reports whether a remote node speaking AS remoteAS peers back, in family f, with
// the nodes the peer applies to (reversePeering: Manual is checked by the caller): always
// for a selector; for a peerIP of that family when the node speaks the AS the peer expects.
func (p *Peer) reverse(f Family, remoteAS, globalAS uint32) bool {
	if p.PeerSelector != nil {
		return true
	}
	want := p.AS
	if want == 0 {
		want = globalAS
	}
	pf, ok := ipFamily(p.PeerIP)
	return ok && pf == f && want == remoteAS
}

func ipFamily(ip string) (Family, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return IPv4, false
	}
	if a.Is4() || a.Is4In6() {
		return IPv4, true
	}
	return IPv6, true
}
