package bgp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// BGPFilters and calico_export_to_bgp_peers, as confd renders them (template_funcs.go's
// bgpFilterBIRDFuncs, the export and import filters of bird.cfg.template, bird_ipam.cfg) and
// BIRD 1.6 runs them: what crosses one session, per route group and source.

// MatchOp is a BGPFilter rule's matchOperator.
type MatchOp uint8

// The match operators (BIRD's =, !=, ~, !~).
const (
	Equal MatchOp = iota
	NotEqual
	In
	NotIn
)

var matchOpNames = [...]string{"Equal", "NotEqual", "In", "NotIn"}

func (o MatchOp) String() string { return matchOpNames[o] }

// FilterRule is one rule of a BGPFilter, as confd renders it: `if (conditions) then { accept;
// }` (or reject; without conditions the action is unconditional).
type FilterRule struct {
	Accept bool
	// CIDR is the rule's cidr (invalid: no CIDR condition), compared with Op; with
	// PrefixLength set, In and NotIn compare with the prefix set CIDR{Min,Max}.
	CIDR         netip.Prefix
	Op           MatchOp
	PrefixLength bool
	Min, Max     int
	// RemotePeers: source RemotePeers, routes learnt over BGP.
	RemotePeers bool
	// Interface is the interface pattern ("" none).
	Interface string
}

// String describes the rule as users write it: "Reject RemotePeers", "Accept In 10.0.0.0/8".
func (r *FilterRule) String() string {
	parts := []string{"Reject"}
	if r.Accept {
		parts[0] = "Accept"
	}
	if r.CIDR.IsValid() {
		c := r.CIDR.String()
		if r.PrefixLength {
			c += fmt.Sprintf(" prefixLength %d-%d", r.Min, r.Max)
		}
		parts = append(parts, r.Op.String()+" "+c)
	}
	if r.RemotePeers {
		parts = append(parts, "RemotePeers")
	}
	if r.Interface != "" {
		parts = append(parts, "interface "+strconv.Quote(r.Interface))
	}
	return strings.Join(parts, " ")
}

// Filter is a BGPFilter: its rules per family, for routes exported to and imported from the
// peers of the BGPPeers that name it.
type Filter struct {
	Name           string
	Export, Import [2][]FilterRule
}

// Direction is a filter's direction.
type Direction uint8

// The directions.
const (
	Export Direction = iota
	Import
)

func (d Direction) String() string {
	if d == Import {
		return "import"
	}
	return "export"
}

// rules returns the filter's rules of family f and direction d.
func (fl *Filter) rules(f Family, d Direction) []FilterRule {
	if d == Import {
		return fl.Import[f]
	}
	return fl.Export[f]
}

// cidrMatch evaluates a rule's CIDR condition on a route's prefix as BIRD does.
func (r *FilterRule) cidrMatch(net netip.Prefix) bool {
	c := r.CIDR
	switch {
	case r.PrefixLength && (r.Op == Equal || r.Op == NotEqual):
		// `net = [ set ]` compares a prefix with a prefix set, values BIRD 1.6 cannot compare:
		// = is never true and != always (seen on Debian's BIRD 1.6.8).
		return r.Op == NotEqual
	case r.Op == Equal || r.Op == NotEqual:
		eq := net.Masked() == c.Masked() && net.Bits() == c.Bits()
		return eq == (r.Op == Equal)
	}
	in := net.Addr().Is4() == c.Addr().Is4() && net.Bits() >= c.Bits() && c.Masked().Contains(net.Addr())
	if r.PrefixLength {
		in = net.Addr().Is4() == c.Addr().Is4() && c.Masked().Contains(net.Addr()) && net.Bits() >= r.Min && net.Bits() <= r.Max && net.Bits() >= c.Bits()
	}
	return in == (r.Op == In)
}

// ifname is the interface BIRD gives a route: none for the blackhole route of a block the
// node originates (BIRD 1.6 reads it as "": `defined(ifname)` holds and "*" matches it), the
// interface toward the next hop for a route learnt over BGP, which rrguard cannot see: it
// takes the node's uplink, named LearntIfName.
func ifname(local bool) string {
	if local {
		return ""
	}
	return LearntIfName
}

// LearntIfName is the interface name rrguard assumes for routes a node learns over BGP, for
// BGPFilter rules with an interface: BIRD resolves the BGP next hop to the interface that
// reaches it, normally the node's uplink.
var LearntIfName = "eth0"

// decision is what a filter function decides about a route.
type decision uint8

const (
	pass   decision = iota // no rule matched: the next function decides
	accept                 // accept; ends the filter (also from inside a function)
	reject                 // reject; ends the filter
)

// decide runs rules on a route of group g (local: originated by the node that runs the
// filter; learnt over BGP otherwise).
func decide(rules []FilterRule, g *RouteGroup, local bool) (decision, int) {
	for i := range rules {
		r := &rules[i]
		if r.CIDR.IsValid() && !g.match(r) {
			continue
		}
		if r.RemotePeers && local {
			continue // source ~ [ RTS_BGP ]: a static (originated) route is not
		}
		if r.Interface != "" && !globMatch(r.Interface, ifname(local)) {
			continue
		}
		if r.Accept {
			return accept, i
		}
		return reject, i
	}
	return pass, -1
}

// globMatch is BIRD's pattern match (`~` on strings): * any run, ? one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}

// passes reports whether a route of group g crosses a session from its sending end to its
// receiving one: the sender's export filter (BGPFilters exp, then
// calico_export_to_bgp_peers; skipped for a router outside the cluster, whose export policy
// rrguard cannot see) and the receiver's import filter (BGPFilters imp, then accept). local:
// the sender originated the route.
func passes(t *Topology, exp, imp []*Filter, g *RouteGroup, local, outside bool) bool {
	if !outside && !exported(t, exp, g, local) {
		return false
	}
	for _, fl := range imp {
		switch d, _ := decide(fl.rules(g.Family, Import), g, false); d {
		case accept:
			return true
		case reject:
			return false
		}
	}
	return true
}

// exported reports whether the sender's export filter accepts a route of group g.
func exported(t *Topology, exp []*Filter, g *RouteGroup, local bool) bool {
	for _, fl := range exp {
		switch d, _ := decide(fl.rules(g.Family, Export), g, local); d {
		case accept:
			return true
		case reject:
			return false
		}
	}
	return calicoExport(t, g, local)
}

// calicoExport is calico_export_to_bgp_peers (bird_ipam.cfg) on a route of group g; local:
// the node's own block (calico_aggr).
func calicoExport(t *Topology, g *RouteGroup, local bool) bool {
	if g.Pool >= 0 && !t.PoolList()[g.Pool].Exported {
		return false // reject_disabled_pools
	}
	if local && g.Confirmed {
		return true // calico_aggr: the node's own confirmed block
	}
	return g.Pool >= 0
}
