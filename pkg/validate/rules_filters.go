package validate

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	calicoerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	calicovalidator "github.com/projectcalico/calico/libcalico-go/lib/validator/v3"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// What BGPFilters and IPPools do to routes is judged by route-propagation (a route that no
// longer reaches a node is a route lost, whatever took it); this file words those causes and
// holds the rule about filters named but missing.

var filterNotFoundRule = Rule{
	ID: RuleFilterNotFound, Default: Warn,
	Summary: "a BGPPeer names a BGPFilter that does not exist (confd skips it)",
	Doc:     "a BGPPeer whose `spec.filters` names a BGPFilter that does not exist, or a BGPFilter deleted while BGPPeers name it: confd skips the name (`if exists`), so the filter meant for those sessions is not applied",
	checks:  []checker{check[missingFilter]{checkOpts: checkOpts{model: true}, problems: missingFilters, render: renderMissingFilters}},
}

// missingFilter is a filter name a BGPPeer gives that no BGPFilter has.
type missingFilter struct {
	peer, group, name string
	index             int
}

func missingFilters(_ *Engine, s *model.Snapshot) []problem[missingFilter] {
	var out []problem[missingFilter]
	// The topology's peers carry spec.filters as written (calico.NewPeer): the BGPPeer
	// itself is looked up only for a name that is missing.
	for _, tp := range s.Topology.Peers {
		for i, f := range tp.Filters {
			if s.State.Filter(f) == nil {
				out = append(out, problem[missingFilter]{key: tp.Name + "|" + f, data: missingFilter{peer: tp.Name, group: s.State.Peer(tp.Name).Group, name: f, index: i}})
			}
		}
	}
	return out
}

func renderMissingFilters(_ *judgment, s *model.Snapshot, parts []part[missingFilter]) []Finding {
	var out []Finding
	for _, p := range parts {
		d := p.data
		msg := fmt.Sprintf("BGPPeer %s: spec.filters[%d] names BGPFilter %s, which does not exist: calico-node skips it and applies no filter in its place", d.peer, d.index, Quote(d.name))
		best, bestDist := "", 0
		for _, f := range s.State.FilterNames() {
			if dist := editDistance(d.name, f); dist <= max(2, len(d.name)/4) && (best == "" || dist < bestDist) {
				best, bestDist = f, dist
			}
		}
		if best != "" {
			msg += fmt.Sprintf("; did you mean %q?", best)
		} else {
			msg += "; create it, or remove the name"
		}
		out = append(out, finding(RuleFilterNotFound, ObjectRef{Kind: calico.KindBGPPeer, Group: d.group, Name: d.peer}, fmt.Sprintf("spec.filters[%d]", d.index), msg))
	}
	return out
}

// routeCause names what keeps the BGP-carried routes of class x from class y in family f
// when pools or BGPFilters do ("" when neither does): a filter rule that drops them, a pool
// whose routes are not exported, blocks no pool covers. rejected returns a route group's
// rejections (Analysis.Rejections, looked up once per finding's rendering).
func (e *Engine) routeCause(s *model.Snapshot, f bgp.Family, x, y int, rejected func(bgp.Family, int) []bgp.Rejection) string {
	a := s.Analysis
	var groups []int
	for _, g := range a.Missing(f, x, y) {
		if a.ViaBGP(g) {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		if rs := rejected(f, g); len(rs) > 0 {
			return describeRejections(s, f, rs)
		}
	}
	pools := s.Topology.PoolList()
	for _, g := range groups {
		rg := a.Group(g)
		switch {
		case rg.Pool < 0:
			return fmt.Sprintf("their pod blocks (such as %s) are in no IPPool: a node exports its own blocks, but reflectors and peers pass on only routes inside a pool (calico_export_to_bgp_peers); keep an IPPool that covers them until the nodes have released them", rg.Example)
		case !pools[rg.Pool].Exported:
			return fmt.Sprintf("IPPool %s has disableBGPExport: true, so no node exports its blocks (such as %s) over BGP, and BIRD routes that pool (it is not VXLAN): set disableBGPExport: false, or route the pool another way (VXLAN)", pools[rg.Pool].Name, rg.Example)
		}
	}
	return ""
}

// describeRejections words the filter rules that drop routes, the first two of them.
func describeRejections(s *model.Snapshot, f bgp.Family, rs []bgp.Rejection) string {
	var parts []string
	for i, r := range rs {
		if i == 2 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-2))
			break
		}
		var ends []string
		reflectors := true
		for _, c := range r.Ends {
			ends = append(ends, members(s, c)...)
			reflectors = reflectors && s.Analysis.Classes[c].ClusterID != ""
		}
		var others []string
		for _, c := range r.Others {
			others = append(others, members(s, c)...)
		}
		ends, others = sorted(ends), sorted(others)
		var effect string
		switch {
		case r.Dir == bgp.Import:
			effect = fmt.Sprintf("%s %s the routes %s %s", nameList(ends), verb(ends, "drops", "drop"), nameList(others), verb(others, "sends", "send"))
		case !r.Learnt:
			effect = fmt.Sprintf("%s %s exporting %s own pod routes to %s", nameList(ends), verb(ends, "stops", "stop"), verb(ends, "its", "their"), nameList(others))
		case reflectors:
			effect = fmt.Sprintf("%s %s passing clients' routes on", verb(ends, "reflector", "reflectors")+" "+nameList(ends), verb(ends, "stops", "stop"))
		default:
			effect = fmt.Sprintf("%s %s passing on routes learnt over BGP", nameList(ends), verb(ends, "stops", "stop"))
		}
		field := r.Dir.String() + "V4"
		if f == bgp.IPv6 {
			field = r.Dir.String() + "V6"
		}
		parts = append(parts, fmt.Sprintf("BGPFilter %s %s rule %d (%s) on BGPPeer %s: %s", r.Filter, field, r.Rule, r.Text, r.Peer, effect))
	}
	return strings.Join(parts, "; ") + "; change the filter or take it off those peerings (confd applies a BGPPeer's filters at both ends of its peerings)"
}

// poolChangedField names the field of an IPPool change that acts on routes.
func poolChangedField(ch model.Change) string {
	n := ch.Object.Pool
	if ch.Old == nil || ch.Old.Pool == nil {
		return specPath.String()
	}
	o := ch.Old.Pool
	for _, c := range []struct {
		field   string
		changed bool
	}{
		{"disableBGPExport", o.Spec.DisableBGPExport != n.Spec.DisableBGPExport},
		{"cidr", o.Spec.CIDR != n.Spec.CIDR},
		{"vxlanMode", o.Spec.VXLANMode != n.Spec.VXLANMode},
		{"ipipMode", o.Spec.IPIPMode != n.Spec.IPIPMode},
		{"nodeSelector", o.Spec.NodeSelector != n.Spec.NodeSelector},
		{"disabled", o.Spec.Disabled != n.Spec.Disabled},
		{"blockSize", o.Spec.BlockSize != n.Spec.BlockSize},
	} {
		if c.changed {
			return specPath.Child(c.field).String()
		}
	}
	return specPath.String()
}

// filterChangedField names the first rule of a BGPFilter change that differs from before.
func filterChangedField(ch model.Change) string {
	n := &ch.Object.Filter.Spec
	var o *apiv3.BGPFilterSpec
	if ch.Old != nil && ch.Old.Filter != nil {
		o = &ch.Old.Filter.Spec
	}
	lists := []struct {
		name     string
		now, was any
	}{{"exportV4", n.ExportV4, nil}, {"importV4", n.ImportV4, nil}, {"exportV6", n.ExportV6, nil}, {"importV6", n.ImportV6, nil}}
	if o != nil {
		lists[0].was, lists[1].was, lists[2].was, lists[3].was = o.ExportV4, o.ImportV4, o.ExportV6, o.ImportV6
	}
	for _, l := range lists {
		now, was := reflect.ValueOf(l.now), reflect.ValueOf(l.was)
		for i := 0; i < now.Len(); i++ {
			if !was.IsValid() || i >= was.Len() || !reflect.DeepEqual(now.Index(i).Interface(), was.Index(i).Interface()) {
				return specPath.Child(l.name).Index(i).String()
			}
		}
		if was.IsValid() && was.Len() > now.Len() {
			return specPath.Child(l.name).String()
		}
	}
	return specPath.String()
}

// routesViaBGP reports whether some node originates routes that only BGP carries (pools
// that are not VXLAN): without any, BGP sessions carry no pod route that matters.
func routesViaBGP(s *model.Snapshot) bool {
	a := s.Analysis
	for c := range a.Classes {
		for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
			if slices.ContainsFunc(a.Classes[c].Routes(f), a.ViaBGP) {
				return true
			}
		}
	}
	return false
}

// filterFieldFindings runs Calico's validator on each rule of a BGPFilter, so that a finding
// names the rule (spec.exportV4[0].cidr). confd renders every BGPFilter into every node's
// bird.cfg, used or not, and BIRD refuses a configuration with a rule that does not parse as
// a whole: one bad rule stops every node's BGP configuration from updating.
func filterFieldFindings(o *calico.Object) []Finding {
	ref := refOf(o)
	var out []Finding
	spec := &o.Filter.Spec
	check := func(list string, i int, rule any) {
		var verr calicoerrors.ErrorValidation
		if !errors.As(calicovalidator.Validate(rule), &verr) {
			return
		}
		for _, f := range verr.ErroredFields {
			name := map[string]string{"CIDR": "cidr", "MatchOperator": "matchOperator", "PrefixLength": "prefixLength", "Min": "prefixLength.min", "Max": "prefixLength.max",
				"Source": "source", "Interface": "interface", "Action": "action"}[f.Name]
			if name == "" {
				name = f.Name
			}
			path := specPath.Child(list).Index(i).String() + "." + name
			msg := f.Reason
			if msg == "" || strings.Contains(msg, "failed to validate") {
				msg = fmt.Sprintf("%v is not valid here", Quote(fmt.Sprint(f.Value)))
				if name == "cidr" {
					msg = fmt.Sprintf("%s is not a network of the rule's family with its host bits clear (such as 10.0.0.0/8)", Quote(fmt.Sprint(f.Value)))
				}
			}
			out = append(out, finding(RulePeerFields, ref, path, fmt.Sprintf("BGPFilter %s: %s: %s; confd writes every BGPFilter into every node's BIRD configuration, and BIRD refuses it whole: every node's BGP configuration would stop updating", o.Name, path, msg)))
		}
	}
	for i := range spec.ExportV4 {
		check("exportV4", i, spec.ExportV4[i])
	}
	for i := range spec.ImportV4 {
		check("importV4", i, spec.ImportV4[i])
	}
	for i := range spec.ExportV6 {
		check("exportV6", i, spec.ExportV6[i])
	}
	for i := range spec.ImportV6 {
		check("importV6", i, spec.ImportV6[i])
	}
	return out
}
