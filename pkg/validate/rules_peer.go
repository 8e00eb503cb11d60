package validate

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	calicoerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	calicovalidator "github.com/projectcalico/calico/libcalico-go/lib/validator/v3"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/selector"
)

var peerFieldsRule = Rule{
	ID: RulePeerFields, Default: Deny,
	Summary: "Calico's own BGPPeer/BGPConfiguration field rules (Calico's validator), default-only fields",
	Doc:     "what Calico's own validator refuses (node xor nodeSelector, peerIP xor peerSelector, asNumber with peerSelector, …) and cluster-wide fields set outside the `default` BGPConfiguration (calico-node ignores them there)",
	object:  peerFieldFindings,
}

// defaultOnly are the BGPConfiguration fields only the object named default may set.
var defaultOnly = []struct {
	field string
	set   func(c *calico.Object) bool
}{
	{meshPath, func(c *calico.Object) bool { return c.Config.Spec.NodeToNodeMeshEnabled != nil }},
	{asNumberPath, func(c *calico.Object) bool { return c.Config.Spec.ASNumber != nil }},
	{specPath.Child("serviceClusterIPs").String(), func(c *calico.Object) bool { return len(c.Config.Spec.ServiceClusterIPs) > 0 }},
	{specPath.Child("serviceExternalIPs").String(), func(c *calico.Object) bool { return len(c.Config.Spec.ServiceExternalIPs) > 0 }},
	{specPath.Child("serviceLoadBalancerIPs").String(), func(c *calico.Object) bool { return len(c.Config.Spec.ServiceLoadBalancerIPs) > 0 }},
	{specPath.Child("nodeMeshPassword").String(), func(c *calico.Object) bool { return c.Config.Spec.NodeMeshPassword != nil }},
	{specPath.Child("nodeMeshMaxRestartTime").String(), func(c *calico.Object) bool { return c.Config.Spec.NodeMeshMaxRestartTime != nil }},
}

func peerFieldFindings(_ *Engine, o *calico.Object) []Finding {
	ref := refOf(o)
	var out []Finding
	switch {
	case o.Filter != nil:
		out = filterFieldFindings(o)
	case o.Pool != nil:
		for _, ce := range calicoErrors(calicovalidator.Validate(o.Pool)) {
			if ce.field == specPath.Child("nodeSelector").String() {
				continue // selector-syntax says it better
			}
			out = append(out, finding(RulePeerFields, ref, ce.field, fmt.Sprintf("IPPool %s: %s", o.Name, ce.msg)))
		}
	case o.Config != nil:
		if o.Name != calico.DefaultConfigName {
			for _, d := range defaultOnly {
				if d.set(o) {
					out = append(out, finding(RulePeerFields, ref, d.field, fmt.Sprintf("BGPConfiguration %s: %s may only be set in the BGPConfiguration named default; calico-node ignores it here: move it to default", o.Name, d.field)))
				}
			}
		}
		for _, ce := range calicoErrors(calicovalidator.Validate(o.Config)) {
			out = append(out, finding(RulePeerFields, ref, ce.field, fmt.Sprintf("BGPConfiguration %s: %s", o.Name, ce.msg)))
		}
	case o.Peer != nil:
		if len(o.Peer.Spec.NodeSelector) > selector.MaxLength || len(o.Peer.Spec.PeerSelector) > selector.MaxLength {
			break // selector-syntax says it; Calico's validator would parse it all the same
		}
		for _, ce := range calicoErrors(calicovalidator.Validate(o.Peer)) {
			if ce.field == nodeSelectorPath || ce.field == peerSelectorPath {
				continue // selector-syntax says it better
			}
			out = append(out, finding(RulePeerFields, ref, ce.field, fmt.Sprintf("BGPPeer %s: %s", o.Name, ce.msg)))
		}
	}
	return out
}

type fieldError struct{ field, msg string }

// calicoErrors turns Calico's validator errors into field paths and messages.
func calicoErrors(err error) []fieldError {
	if err == nil {
		return nil
	}
	var verr calicoerrors.ErrorValidation
	if !errors.As(err, &verr) {
		return []fieldError{{field: specPath.String(), msg: err.Error()}}
	}
	var out []fieldError
	for _, f := range verr.ErroredFields {
		name := strings.TrimPrefix(f.Name, "Spec.")
		path := specPath.Child(strings.ToLower(name[:1]) + name[1:]).String()
		switch {
		case f.Name == "Name":
			path = metadataNamePath
		case strings.EqualFold(name, "PeerIP"):
			path = peerIPPath
		case strings.EqualFold(name, "ASNumber"):
			path = asNumberPath
		}
		msg := f.Reason
		if msg == "" {
			msg = fmt.Sprintf("invalid value %v", f.Value)
		}
		out = append(out, fieldError{field: path, msg: fmt.Sprintf("%s: %s", path, msg)})
	}
	return out
}

var selectorSyntaxRule = Rule{
	ID: RuleSelectorSyntax, Default: Deny,
	Summary: "a selector that does not parse (calico-node would match nothing), a newline in a selector",
	Doc:     "a selector that does not parse or has a line break: calico-node logs it and matches nothing",
	object: func(_ *Engine, o *calico.Object) []Finding {
		if o.Pool != nil {
			p := calico.NewPool(o.Group, o.Pool)
			path := specPath.Child("nodeSelector").String()
			switch {
			case len(o.Pool.Spec.NodeSelector) > selector.MaxLength:
				return []Finding{finding(RuleSelectorSyntax, refOf(o), path, fmt.Sprintf("IPPool %s: %s is %d characters long; Calico allows %d", o.Name, path, len(o.Pool.Spec.NodeSelector), selector.MaxLength))}
			case p.NodeSelectorErr != nil:
				return []Finding{finding(RuleSelectorSyntax, refOf(o), path, fmt.Sprintf("IPPool %s: %s: %v; no node would be given blocks of it", o.Name, path, p.NodeSelectorErr))}
			}
			return nil
		}
		if o.Peer == nil {
			return nil
		}
		p := calico.NewPeer(o.Group, o.Peer)
		var out []Finding
		for _, s := range []struct {
			field, expr string
			err         error
		}{{nodeSelectorPath, p.Spec.NodeSelector, p.NodeSelectorErr}, {peerSelectorPath, p.Spec.PeerSelector, p.PeerSelectorErr}} {
			switch {
			case len(s.expr) > selector.MaxLength:
				out = append(out, finding(RuleSelectorSyntax, refOf(o), s.field, fmt.Sprintf("BGPPeer %s: %s is %d characters long; Calico allows %d", o.Name, s.field, len(s.expr), selector.MaxLength)))
			case s.err != nil:
				out = append(out, finding(RuleSelectorSyntax, refOf(o), s.field, fmt.Sprintf("BGPPeer %s: %s: %v; calico-node would log it and match nothing", o.Name, s.field, s.err)))
			}
		}
		return out
	},
}

var selectorMatchesNothingRule = Rule{
	ID: RuleSelectorMatchesNothing, Default: Warn,
	Summary: "a selector that selects no node, with did-you-mean",
	Doc:     `a label typo: a selector that selects no node with a BGP address, with "did you mean"; a node-scoped BGPPeer whose ` + "`spec.node`" + ` is no node`,
	checks:  []checker{check[emptySelector]{checkOpts: checkOpts{model: true}, problems: selectorsMatchingNothing, render: renderSelectorsMatchingNothing}},
}

// emptySelector is a BGPPeer field that selects no node.
type emptySelector struct {
	peer  string
	group string
	field string
	expr  string
}

// selectorsMatchingNothing finds the selectors (and spec.node names) that select no node
// taking part in BGP.
func selectorsMatchingNothing(_ *Engine, s *model.Snapshot) []problem[emptySelector] {
	var out []problem[emptySelector]
	local, remote := s.Analysis.PeerMatchCounts()
	for p, name := range s.Peers() {
		if local[p] > 0 && remote[p] > 0 {
			continue // both sides select nodes: nothing to say (most peers)
		}
		peer := s.State.Peer(name)
		if peer.NodeSelectorErr != nil && peer.PeerSelectorErr != nil {
			continue
		}
		sides := []struct {
			field, expr string
			empty       bool
		}{
			{specNodePath, peer.Spec.Node, peer.Spec.Node != "" && local[p] == 0},
			{nodeSelectorPath, peer.Spec.NodeSelector, peer.Spec.NodeSelector != "" && local[p] == 0 && peer.NodeSelectorErr == nil},
			{peerSelectorPath, peer.Spec.PeerSelector, peer.Spec.PeerSelector != "" && remote[p] == 0 && peer.PeerSelectorErr == nil},
		}
		for _, side := range sides {
			if side.empty {
				d := emptySelector{peer: name, group: peer.Group, field: side.field, expr: side.expr}
				out = append(out, problem[emptySelector]{key: name + "|" + side.field + "|" + side.expr, data: d})
			}
		}
	}
	return out
}

func renderSelectorsMatchingNothing(_ *judgment, s *model.Snapshot, parts []part[emptySelector]) []Finding {
	var known map[string]map[string]bool // label key → values, built on first need
	var out []Finding
	for _, p := range parts {
		d := p.data
		ref := ObjectRef{Kind: calico.KindBGPPeer, Group: d.group, Name: d.peer}
		if d.field == specNodePath {
			out = append(out, finding(RuleSelectorMatchesNothing, ref, d.field,
				fmt.Sprintf("BGPPeer %s: spec.node %q is no node with a BGP address: the peering applies to nothing; check the node name (kubectl get nodes)", d.peer, d.expr)))
			continue
		}
		if known == nil {
			known = labelValues(s)
		}
		msg := fmt.Sprintf("BGPPeer %s: %s %s selects no node with a BGP address", d.peer, d.field, Quote(d.expr))
		if hint := didYouMean(d.expr, known); hint != "" {
			msg += "; did you mean " + hint + "?"
		} else {
			msg += "; check the label keys and values on the nodes (kubectl get nodes --show-labels)"
		}
		out = append(out, finding(RuleSelectorMatchesNothing, ref, d.field, msg))
	}
	return out
}

// labelValues collects every label key and value on the nodes.
func labelValues(s *model.Snapshot) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for i := range s.Topology.Nodes {
		for k, v := range s.Topology.Nodes[i].Labels {
			if out[k] == nil {
				out[k] = map[string]bool{}
			}
			out[k][v] = true
		}
	}
	return out
}

// didYouMean proposes label keys close to the keys a selector uses that no node has.
func didYouMean(expr string, known map[string]map[string]bool) string {
	sel, err := selector.Parse(expr)
	if err != nil {
		return ""
	}
	var hints []string
	for _, k := range sel.Keys() {
		if known[k] != nil {
			continue
		}
		best, bestDist := "", 0
		limit := max(2, len(k)/4)
		for cand := range known {
			if diff := len(cand) - len(k); diff > limit || -diff > limit {
				continue // further than limit whatever the letters
			}
			d := editDistance(k, cand)
			if d <= limit && (best == "" || d < bestDist || d == bestDist && cand < best) {
				best, bestDist = cand, d
			}
		}
		if best != "" {
			hints = append(hints, fmt.Sprintf("label %q instead of %q", best, k))
		}
	}
	sort.Strings(hints)
	return strings.Join(hints, ", ")
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var peerTargetsNonReflectorRule = Rule{
	ID: RulePeerTargetsNonReflector, Default: Warn,
	Summary: "mesh off: a peerSelector selects nodes without a cluster ID",
	Doc:     "with the mesh off, a peerSelector that selects nodes without a cluster ID next to reflectors (or labelled as reflectors): they will not reflect",
	checks:  []checker{check[nonReflectorTarget]{checkOpts: checkOpts{model: true}, problems: peersTargetingNonReflectors, render: renderPeersTargetingNonReflectors}},
}

type nonReflectorTarget struct {
	peer  string
	plain []string
}

// peersTargetingNonReflectors: with the mesh off, a peerSelector that selects nodes without a
// cluster ID next to reflectors, or nodes labelled as reflectors without a cluster ID: those
// nodes will not reflect what they learn.
func peersTargetingNonReflectors(e *Engine, s *model.Snapshot) []problem[nonReflectorTarget] {
	if s.State.Mesh() {
		return nil
	}
	a := s.Analysis
	var out []problem[nonReflectorTarget]
	var plainClasses []int // the plain classes a peer selects (scratch)
	for p, name := range s.Peers() {
		if s.Topology.Peers[p].PeerSelector == nil {
			continue
		}
		// Whether it selects reflectors or labelled nodes, and the plain classes it selects.
		reflectors, labelled := false, false
		plainClasses = plainClasses[:0]
		for _, c := range a.SelectedClasses(p) {
			cl := &a.Classes[c]
			if len(cl.Members) == 0 {
				continue
			}
			if cl.ClusterID != "" {
				reflectors = true
				continue
			}
			_, l := s.Topology.Nodes[cl.Members[0]].Labels[e.cfg.ReflectorLabel]
			plainClasses = append(plainClasses, c)
			labelled = labelled || l
		}
		if len(plainClasses) == 0 || (!reflectors && !labelled) {
			continue
		}
		var plain []string
		for _, c := range plainClasses {
			plain = append(plain, members(s, c)...)
		}
		sort.Strings(plain)
		out = append(out, problem[nonReflectorTarget]{key: name + "|" + strings.Join(plain, ","), data: nonReflectorTarget{peer: name, plain: plain}})
	}
	return out
}

func renderPeersTargetingNonReflectors(_ *judgment, s *model.Snapshot, parts []part[nonReflectorTarget]) []Finding {
	var out []Finding
	for _, p := range parts {
		d := p.data
		peer := s.State.Peer(d.peer)
		out = append(out, finding(RulePeerTargetsNonReflector, ObjectRef{Kind: calico.KindBGPPeer, Group: peer.Group, Name: d.peer}, peerSelectorPath,
			fmt.Sprintf("BGPPeer %s: peerSelector %s selects %s, which %s no route-reflector cluster ID: %s will not reflect routes to other clients; give %s a routeReflectorClusterID or narrow the selector",
				d.peer, Quote(peer.Spec.PeerSelector), nameList(d.plain), hasHave(d.plain), theyIt(d.plain), themIt(d.plain))))
	}
	return out
}

var sessionOneSidedRule = Rule{
	ID: RuleSessionOneSided, Default: Warn,
	Summary: "a session one end configures and the other does not (wrong AS or port, `reversePeering: Manual` alone): it stays Idle",
	Doc:     "a BGP session one end configures and the other does not, or not with the AS and port in use: `reversePeering: Manual` without a BGPPeer for the other side, a `peerIP` whose `asNumber` or port is not the node's, a `localASNumber` other than the node's AS; BIRD keeps it Idle and it carries no routes",
	checks:  []checker{check[oneSided]{checkOpts: checkOpts{model: true}, problems: oneSidedSessions, render: renderOneSidedSessions}},
}

// oneSidedSessions: per family, the pairs of classes whose session only the first
// configures, or both with passwords from different sources.
func oneSidedSessions(_ *Engine, s *model.Snapshot) []problem[oneSided] {
	var out []problem[oneSided]
	for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
		for _, pair := range s.Analysis.OneSidedPairs(f) {
			why := s.Analysis.OneSidedWhy(f, pair[0], pair[1])
			out = append(out, problem[oneSided]{key: fmt.Sprint(f, why), classes: []int{pair[0], pair[1]}, data: oneSided{f, why}})
		}
	}
	return out
}

type oneSided struct {
	family bgp.Family
	why    bgp.OneSidedReason
}

func renderOneSidedSessions(_ *judgment, s *model.Snapshot, parts []part[oneSided]) []Finding {
	var out []Finding
	for _, p := range parts {
		d := p.data
		from, to := sorted(p.members[0]), sorted(p.members[1])
		msg := fmt.Sprintf("%s %s a BGP session (%s) to %s, which %s not configure it back with the AS and port in use: the session stays Idle and carries no routes. Check the BGPPeers between them: reversePeering: Manual needs a BGPPeer for the other side; a peerIP's asNumber and port must be the node's; a localASNumber other than the node's AS is refused",
			nameList(from), verb(from, "configures", "configure"), d.family, nameList(to), verb(to, "does", "do"))
		if d.why == bgp.PasswordsDiffer {
			msg = fmt.Sprintf("%s and %s configure their BGP session (%s) with passwords from different sources (%s): TCP-MD5 authentication fails and the session never establishes; give the BGPPeers of both ends the same spec.password.secretKeyRef",
				nameList(from), nameList(to), d.family, passwordSources(s, d.family, p.classes[0], p.classes[1]))
		}
		out = append(out, finding(RuleSessionOneSided, nodeRef(from[0]), "", msg))
	}
	return out
}

// passwordSources says where each end of a session takes its password from.
func passwordSources(s *model.Snapshot, f bgp.Family, x, y int) string {
	name := func(c, d int) string {
		for _, ss := range s.Analysis.NodeSessions(members(s, c)[0]) {
			if ss.Family == f && s.Analysis.Class(ss.PeerNode) == d {
				src := "none"
				if ss.Password != "" {
					src = ss.Password
				}
				return fmt.Sprintf("%s: %s, from BGPPeer %s", members(s, c)[0], src, ss.Source)
			}
		}
		return members(s, c)[0] + ": none"
	}
	return name(x, y) + "; " + name(y, x)
}

// sorted returns a sorted copy of names.
func sorted(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}
