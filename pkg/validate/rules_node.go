package validate

import (
	"fmt"
	"math"
	"sort"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

var clusterIDFormatRule = Rule{
	ID: RuleClusterIDFormat, Default: Deny,
	Summary: "cluster ID not an IPv4 dotted quad; masked CIDR forms",
	Doc:     "a cluster ID calico-node ignores (not an IPv4 dotted quad: the node silently stops being a reflector) or that BIRD refuses (a masked CIDR such as `244.0.0.1/32`)",
	object: func(_ *Engine, o *calico.Object) []Finding {
		n := o.Node
		if n == nil {
			return nil
		}
		if p := calico.ClusterIDProblem(n.ClusterID); p != "" {
			return []Finding{finding(RuleClusterIDFormat, refOf(o), n.FieldPath("routeReflectorClusterID"), fmt.Sprintf("node %s: %s", n.Name, p))}
		}
		return nil
	},
}

var asNumberRule = Rule{
	ID: RuleASNumber, Default: Deny,
	Summary: "ASN 0, 23456, 65535, 4294967295, > 2147483647 on CRD clusters, unparsable; reflector and clients in different ASes",
	Doc:     "AS 0, 23456 (AS_TRANS), 65535, 4294967295, AS numbers above 2147483647 on CRD-backed clusters (the CRDs store int32, calico#13494), unparsable annotations, a `peerIP` without `asNumber` (BIRD refuses `as 0` and the node loads no BGP configuration); a reflector whose clients are in another AS (eBGP: no reflection, calico#2292)",
	object:  asNumberFindings,
	checks:  []checker{check[[]int]{checkOpts: checkOpts{model: true}, problems: asMismatchProblems, render: renderASMismatch}},
}

func asNumberFindings(e *Engine, o *calico.Object) []Finding {
	ref := refOf(o)
	var out []Finding
	switch {
	case o.Node != nil:
		n := o.Node
		if n.ASNumber == "" {
			return nil
		}
		field := n.FieldPath("asNumber")
		if as, err := calico.ParseASN(n.ASNumber); err != nil {
			out = append(out, finding(RuleASNumber, ref, field, fmt.Sprintf("node %s: AS number %v; calico-node ignores it and uses the global AS", n.Name, err)))
		} else if msg := e.asProblem(as, false); msg != "" {
			out = append(out, finding(RuleASNumber, ref, field, fmt.Sprintf("node %s: %s", n.Name, msg)))
		}
	case o.Peer != nil:
		spec := &o.Peer.Spec
		if spec.PeerIP != "" && spec.ASNumber == 0 && spec.LocalWorkloadSelector == "" {
			out = append(out, finding(RuleASNumber, ref, asNumberPath, fmt.Sprintf("BGPPeer %s: spec.peerIP %s without spec.asNumber: calico-node renders \"neighbor ... as 0\", which BIRD refuses, so the BGP configuration of every node the peer applies to stops loading and all their sessions go down; set spec.asNumber (the cluster's AS for an iBGP peer)",
				o.Name, Truncate(spec.PeerIP, 64))))
		}
		if as := uint32(spec.ASNumber); as != 0 {
			if msg := e.asProblem(as, true); msg != "" {
				out = append(out, finding(RuleASNumber, ref, asNumberPath, fmt.Sprintf("BGPPeer %s: %s", o.Name, msg)))
			}
		}
	case o.Config != nil:
		if as := o.Config.Spec.ASNumber; as != nil {
			if msg := e.asProblem(uint32(*as), true); msg != "" {
				out = append(out, finding(RuleASNumber, ref, asNumberPath, fmt.Sprintf("BGPConfiguration %s: %s", o.Name, msg)))
			}
		}
	}
	return out
}

// asProblem says what is wrong with an AS number value ("" if nothing). inCRD is true for
// the asNumber fields of BGPPeer and BGPConfiguration, which Calico's CRDs store as int32 (a
// Node's AS lives in an annotation, a string: any uint32 fits).
func (e *Engine) asProblem(as uint32, inCRD bool) string {
	switch {
	case as == 0:
		return "AS number 0 is reserved (RFC 7607): use a private AS such as 64512-65534"
	case as == 23456:
		return "AS number 23456 is AS_TRANS, reserved for 4-byte AS transition (RFC 6793): pick another, e.g. from 64512-65534"
	case as == 65535 || as == math.MaxUint32:
		return fmt.Sprintf("AS number %d is reserved (RFC 7300): pick another, e.g. from 64512-65534", as)
	case as > math.MaxInt32 && inCRD && *e.cfg.CRDBacked:
		return fmt.Sprintf("AS number %d is above 2147483647: Calico's CRDs store asNumber as int32 and the API server refuses it (projectcalico/calico#13494)", as)
	}
	return ""
}

// asMismatchProblems: a reflector class with sessions to clients of another AS (data: those
// client classes).
func asMismatchProblems(_ *Engine, s *model.Snapshot) []problem[[]int] {
	a := s.Analysis
	var out []problem[[]int]
	for r := range a.Classes {
		if a.Classes[r].ClusterID == "" {
			continue
		}
		var cs []int
		for c := range a.Classes {
			if a.Classes[c].ClusterID == "" && a.Classes[c].AS != a.Classes[r].AS && a.Peered(r, c) {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			out = append(out, problem[[]int]{classes: []int{r}, data: cs})
		}
	}
	return out
}

func renderASMismatch(_ *judgment, s *model.Snapshot, parts []part[[]int]) []Finding {
	a := s.Analysis
	var out []Finding
	for _, p := range parts {
		r, cs := p.classes[0], p.data
		var clients []string
		for _, c := range cs {
			clients = append(clients, members(s, c)...)
		}
		sort.Strings(clients)
		for _, name := range p.members[0] {
			out = append(out, finding(RuleASNumber, nodeRef(name), s.State.Node(name).FieldPath("asNumber"),
				fmt.Sprintf("reflector %s is in AS %d but its %s %s %s in AS %d: the sessions are eBGP and a reflector reflects only over iBGP (projectcalico/calico#2292); give reflector and clients the same AS",
					name, a.Classes[r].AS, verb(clients, "peer", "peers"), nameList(clients), verb(clients, "is", "are"), a.Classes[cs[0]].AS)))
		}
	}
	return out
}

var reflectorLabelRule = Rule{
	ID: RuleReflectorLabel, Default: Warn,
	Summary: "cluster ID and reflector label disagree",
	Doc:     "a node labelled as a reflector without a cluster ID (it reflects nothing); a reflector without the label when auto-fill is off; an unreadable `projectcalico.org/labels`",
	object: func(e *Engine, o *calico.Object) []Finding {
		n := o.Node
		if n == nil {
			return nil
		}
		ref := refOf(o)
		var out []Finding
		if n.CalicoLabelsError != nil {
			out = append(out, finding(RuleReflectorLabel, ref, calicoLabelsPath,
				fmt.Sprintf("node %s: %s is not a JSON map of strings (%v): Calico ignores these labels", n.Name, calico.AnnotationLabels, n.CalicoLabelsError)))
		}
		_, labelled := n.Label(e.cfg.ReflectorLabel)
		switch {
		case n.ClusterID != "" && calico.ClusterIDProblem(n.ClusterID) == "" && !labelled && !*e.cfg.AutoFillLabel:
			out = append(out, finding(RuleReflectorLabel, ref, labelsPath, fmt.Sprintf("node %s has cluster ID %s but not the label %s: BGPPeers that select reflectors by that label will not peer with it; run kubectl label node %s %s=true",
				n.Name, n.ClusterID, e.cfg.ReflectorLabel, n.Name, e.cfg.ReflectorLabel)))
		case labelled && n.ClusterID == "":
			out = append(out, finding(RuleReflectorLabel, ref, labelsPath, fmt.Sprintf("node %s has the label %s but no cluster ID: BGPPeers treat it as a reflector yet it reflects nothing; set %s or remove the label",
				n.Name, e.cfg.ReflectorLabel, n.FieldPath("routeReflectorClusterID"))))
		}
		return out
	},
}

var reflectorAddressRule = Rule{
	ID: RuleReflectorAddress, Default: Warn,
	Summary: "a reflector without a BGP address",
	Doc:     "a node with a cluster ID but no valid BGP address: it peers with nobody",
	object: func(_ *Engine, o *calico.Object) []Finding {
		n := o.Node
		if n == nil || n.ClusterID == "" {
			return nil
		}
		if !n.HasBGPAddress() {
			return []Finding{finding(RuleReflectorAddress, refOf(o), n.FieldPath("ipv4Address"), fmt.Sprintf("node %s has cluster ID %s but no valid BGP address (%s): it cannot peer with anyone; calico-node normally sets it at start-up",
				n.Name, n.ClusterID, n.FieldPath("ipv4Address")))}
		}
		return nil
	},
}
