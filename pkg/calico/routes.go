package calico

import (
	"fmt"
	"net/netip"
	"slices"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/selector"
)

// Pool is an IPPool with what rrguard reads of it.
type Pool struct {
	Group string
	*apiv3.IPPool
	// Err says why calico-node cannot use it (a CIDR that does not parse); the model leaves
	// such a pool out.
	Err error
	// NodeSelectorErr is set when spec.nodeSelector does not parse (it selects nothing).
	NodeSelectorErr error
	model           bgp.Pool
}

// Model returns the pool as confd and felix act on it.
func (p *Pool) Model() bgp.Pool { return p.model }

// NewPool reads an IPPool.
func NewPool(group string, ip *apiv3.IPPool) *Pool {
	out := &Pool{Group: group, IPPool: ip}
	s := &ip.Spec
	cidr, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		out.Err = fmt.Errorf("spec.cidr %s is not a CIDR: %v", validateQuote(s.CIDR), err)
		return out
	}
	m := bgp.Pool{Name: ip.Name, CIDR: cidr.Masked(), BlockSize: s.BlockSize, Exported: !s.DisableBGPExport}
	if m.BlockSize == 0 {
		m.BlockSize = 26 // Calico's defaults
		if !cidr.Addr().Is4() {
			m.BlockSize = 122
		}
	}
	// felix programs the routes of VXLAN pools itself; BIRD those of IPIP and unencapsulated
	// pools (calico_kernel_programming in bird_ipam.cfg).
	m.ViaBGP = s.VXLANMode != apiv3.VXLANModeAlways && s.VXLANMode != apiv3.VXLANModeCrossSubnet
	workloads := len(s.AllowedUses) == 0 || slices.Contains(s.AllowedUses, apiv3.IPPoolAllowedUseWorkload)
	manual := s.AssignmentMode != nil && *s.AssignmentMode == apiv3.Manual
	m.Allocates = !s.Disabled && workloads && !manual
	if s.NodeSelector != "" {
		sel, err := selector.Parse(s.NodeSelector)
		out.NodeSelectorErr = err
		m.NodeSelector = &sel
	}
	out.model = m
	return out
}

// Filter is a BGPFilter with its rules read.
type Filter struct {
	Group string
	*apiv3.BGPFilter
	model *bgp.Filter
}

// Model returns the filter's rules as confd renders them.
func (f *Filter) Model() *bgp.Filter { return f.model }

// NewFilter reads a BGPFilter. A rule confd cannot render (a CIDR that does not parse) is
// left out: the validator's findings say what is wrong with it.
func NewFilter(group string, fl *apiv3.BGPFilter) *Filter {
	m := &bgp.Filter{Name: fl.Name}
	for _, r := range fl.Spec.ExportV4 {
		if rule, ok := filterRule(r.Action, r.CIDR, r.MatchOperator, r.Source, r.Interface, lengthsV4(r.PrefixLength)); ok {
			m.Export[bgp.IPv4] = append(m.Export[bgp.IPv4], rule)
		}
	}
	for _, r := range fl.Spec.ImportV4 {
		if rule, ok := filterRule(r.Action, r.CIDR, r.MatchOperator, r.Source, r.Interface, lengthsV4(r.PrefixLength)); ok {
			m.Import[bgp.IPv4] = append(m.Import[bgp.IPv4], rule)
		}
	}
	for _, r := range fl.Spec.ExportV6 {
		if rule, ok := filterRule(r.Action, r.CIDR, r.MatchOperator, r.Source, r.Interface, lengthsV6(r.PrefixLength)); ok {
			m.Export[bgp.IPv6] = append(m.Export[bgp.IPv6], rule)
		}
	}
	for _, r := range fl.Spec.ImportV6 {
		if rule, ok := filterRule(r.Action, r.CIDR, r.MatchOperator, r.Source, r.Interface, lengthsV6(r.PrefixLength)); ok {
			m.Import[bgp.IPv6] = append(m.Import[bgp.IPv6], rule)
		}
	}
	return &Filter{Group: group, BGPFilter: fl, model: m}
}

type lengths struct {
	set      bool
	min, max *int32
}

func lengthsV4(p *apiv3.BGPFilterPrefixLengthV4) lengths {
	if p == nil {
		return lengths{}
	}
	return lengths{true, p.Min, p.Max}
}

func lengthsV6(p *apiv3.BGPFilterPrefixLengthV6) lengths {
	if p == nil {
		return lengths{}
	}
	return lengths{true, p.Min, p.Max}
}

var matchOps = map[apiv3.BGPFilterMatchOperator]bgp.MatchOp{apiv3.Equal: bgp.Equal, apiv3.NotEqual: bgp.NotEqual, apiv3.In: bgp.In, apiv3.NotIn: bgp.NotIn}

// filterRule reads a rule as confd's filterStatement renders it.
func filterRule(action apiv3.BGPFilterAction, cidr string, op apiv3.BGPFilterMatchOperator, source apiv3.BGPFilterMatchSource, iface string, l lengths) (bgp.FilterRule, bool) {
	r := bgp.FilterRule{Accept: action == apiv3.Accept, RemotePeers: source == apiv3.BGPFilterSourceRemotePeers, Interface: iface}
	if action != apiv3.Accept && action != apiv3.Reject {
		return r, false
	}
	if cidr != "" {
		p, err := netip.ParsePrefix(cidr)
		o, ok := matchOps[op]
		if err != nil || !ok {
			return r, false
		}
		r.CIDR, r.Op = p, o
		if l.set {
			// confd: [ cidr{max(mask, min), min(32 or 128, max)} ]
			r.PrefixLength, r.Min, r.Max = true, p.Bits(), p.Addr().BitLen()
			if l.min != nil {
				r.Min = max(r.Min, int(*l.min))
			}
			if l.max != nil {
				r.Max = min(r.Max, int(*l.max))
			}
		}
	}
	return r, true
}

// blocksOf collects the IPAM blocks of each node from the BlockAffinities: confd ignores
// pending affinities and those being deleted; it accepts a block outside any pool only when
// its affinity is confirmed (or has no state: bird_aggr.cfg's "implicitly confirmed").
func blocksOf(affinities map[string]*Affinity) map[string][]bgp.Block {
	out := map[string][]bgp.Block{}
	names := make([]string, 0, len(affinities))
	for name := range affinities {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := affinities[name]
		if a.Deleted || a.State == string(apiv3.StatePending) {
			continue
		}
		p, err := netip.ParsePrefix(a.CIDR)
		if err != nil {
			continue
		}
		out[a.Node] = append(out[a.Node], bgp.Block{CIDR: p.Masked(), Confirmed: a.State == "" || a.State == string(apiv3.StateConfirmed)})
	}
	return out
}
