package validate

import (
	"errors"
	"fmt"
	"math"
	"strings"

	calicoerrors "github.com/projectcalico/calico/libcalico-go/lib/errors"
	calicovalidator "github.com/projectcalico/calico/libcalico-go/lib/validator/v3"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/selector"
)

// ObjectRef names the object a finding is about.
type ObjectRef struct {
	Kind  string `json:"kind"`
	Group string `json:"group,omitempty"`
	Name  string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Group == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "." + r.Group + "/" + r.Name
}

// Finding is one thing wrong.
type Finding struct {
	Rule    string    `json:"rule"`
	Action  Action    `json:"action"`
	Object  ObjectRef `json:"object"`
	Field   string    `json:"field,omitempty"`
	Message string    `json:"message"`
	// key identifies what the finding is about, to tell findings a change introduces from
	// those that were already there.
	key string
	// warnAtMost: the finding says a check could not be done; it never refuses a change.
	warnAtMost bool
}

func refOf(o *calico.Object) ObjectRef {
	return ObjectRef{Kind: o.Kind, Group: o.Group, Name: o.Name}
}

func nodeRef(name string) ObjectRef { return ObjectRef{Kind: calico.KindNode, Name: name} }

// objectFindings runs the rules that look at one object alone.
func (e *Engine) objectFindings(o *calico.Object) []Finding {
	switch {
	case o.Node != nil:
		return e.nodeFindings(o)
	case o.Peer != nil:
		return e.peerFindings(o)
	case o.Config != nil:
		return e.configFindings(o)
	}
	return nil
}

func (e *Engine) nodeFindings(o *calico.Object) []Finding {
	n := o.Node
	ref := refOf(o)
	var out []Finding
	add := func(rule, field, msg string) {
		out = append(out, Finding{Rule: rule, Object: ref, Field: field, Message: msg, key: rule + "|" + field + "|" + msg})
	}
	if p := calico.ClusterIDProblem(n.ClusterID); p != "" {
		add(RuleClusterIDFormat, n.FieldPath("routeReflectorClusterID"), fmt.Sprintf("node %s: %s", n.Name, p))
	}
	if n.ASNumber != "" {
		field := n.FieldPath("asNumber")
		if as, err := calico.ParseASN(n.ASNumber); err != nil {
			add(RuleASNumber, field, fmt.Sprintf("node %s: AS number %v; calico-node ignores it and uses the global AS", n.Name, err))
		} else if msg := e.asProblem(as, false); msg != "" {
			add(RuleASNumber, field, fmt.Sprintf("node %s: %s", n.Name, msg))
		}
	}
	if n.CalicoLabelsError != nil {
		add(RuleReflectorLabel, "metadata.annotations["+calico.AnnotationLabels+"]",
			fmt.Sprintf("node %s: %s is not a JSON map of strings (%v): Calico ignores these labels", n.Name, calico.AnnotationLabels, n.CalicoLabelsError))
	}
	labels := n.Labels()
	_, labelled := labels[e.cfg.ReflectorLabel]
	cid := n.ClusterID != "" && calico.ClusterIDProblem(n.ClusterID) == ""
	switch {
	case cid && !labelled && !*e.cfg.AutoFillLabel:
		add(RuleReflectorLabel, "metadata.labels", fmt.Sprintf("node %s has cluster ID %s but not the label %s: BGPPeers that select reflectors by that label will not peer with it; run kubectl label node %s %s=true",
			n.Name, n.ClusterID, e.cfg.ReflectorLabel, n.Name, e.cfg.ReflectorLabel))
	case labelled && n.ClusterID == "":
		add(RuleReflectorLabel, "metadata.labels", fmt.Sprintf("node %s has the label %s but no cluster ID: BGPPeers treat it as a reflector yet it reflects nothing; set %s or remove the label",
			n.Name, e.cfg.ReflectorLabel, n.FieldPath("routeReflectorClusterID")))
	}
	if n.ClusterID != "" {
		m := n.Model()
		if m.IPv4 == "" && m.IPv6 == "" {
			add(RuleReflectorAddress, n.FieldPath("ipv4Address"), fmt.Sprintf("node %s has cluster ID %s but no valid BGP address (%s): it cannot peer with anyone; calico-node normally sets it at start-up",
				n.Name, n.ClusterID, n.FieldPath("ipv4Address")))
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

// defaultOnly are the BGPConfiguration fields only the object named default may set.
var defaultOnly = []struct {
	field string
	set   func(c *calico.Object) bool
}{
	{"spec.nodeToNodeMeshEnabled", func(c *calico.Object) bool { return c.Config.Spec.NodeToNodeMeshEnabled != nil }},
	{"spec.asNumber", func(c *calico.Object) bool { return c.Config.Spec.ASNumber != nil }},
	{"spec.serviceClusterIPs", func(c *calico.Object) bool { return len(c.Config.Spec.ServiceClusterIPs) > 0 }},
	{"spec.serviceExternalIPs", func(c *calico.Object) bool { return len(c.Config.Spec.ServiceExternalIPs) > 0 }},
	{"spec.serviceLoadBalancerIPs", func(c *calico.Object) bool { return len(c.Config.Spec.ServiceLoadBalancerIPs) > 0 }},
	{"spec.nodeMeshPassword", func(c *calico.Object) bool { return c.Config.Spec.NodeMeshPassword != nil }},
	{"spec.nodeMeshMaxRestartTime", func(c *calico.Object) bool { return c.Config.Spec.NodeMeshMaxRestartTime != nil }},
}

func (e *Engine) configFindings(o *calico.Object) []Finding {
	ref := refOf(o)
	var out []Finding
	add := func(rule, field, msg string) {
		out = append(out, Finding{Rule: rule, Object: ref, Field: field, Message: msg, key: rule + "|" + field + "|" + msg})
	}
	if o.Name != calico.DefaultConfigName {
		for _, d := range defaultOnly {
			if d.set(o) {
				add(RulePeerFields, d.field, fmt.Sprintf("BGPConfiguration %s: %s may only be set in the BGPConfiguration named default; calico-node ignores it here: move it to default", o.Name, d.field))
			}
		}
	}
	if as := o.Config.Spec.ASNumber; as != nil {
		if msg := e.asProblem(uint32(*as), true); msg != "" {
			add(RuleASNumber, "spec.asNumber", fmt.Sprintf("BGPConfiguration %s: %s", o.Name, msg))
		}
	}
	for _, ce := range calicoErrors(calicovalidator.Validate(o.Config)) {
		add(RulePeerFields, ce.field, fmt.Sprintf("BGPConfiguration %s: %s", o.Name, ce.msg))
	}
	return out
}

func (e *Engine) peerFindings(o *calico.Object) []Finding {
	ref := refOf(o)
	p := calico.NewPeer(o.Group, o.Peer)
	var out []Finding
	add := func(rule, field, msg string) {
		out = append(out, Finding{Rule: rule, Object: ref, Field: field, Message: msg, key: rule + "|" + field + "|" + msg})
	}
	for _, s := range []struct {
		field, expr string
		err         error
	}{{"spec.nodeSelector", p.Spec.NodeSelector, p.NodeSelectorErr}, {"spec.peerSelector", p.Spec.PeerSelector, p.PeerSelectorErr}} {
		switch {
		case len(s.expr) > selector.MaxLength:
			add(RuleSelectorSyntax, s.field, fmt.Sprintf("BGPPeer %s: %s is %d characters long; Calico allows %d", o.Name, s.field, len(s.expr), selector.MaxLength))
		case s.err != nil:
			add(RuleSelectorSyntax, s.field, fmt.Sprintf("BGPPeer %s: %s: %v; calico-node would log it and match nothing", o.Name, s.field, s.err))
		}
	}
	if p.Spec.PeerIP != "" && p.Spec.ASNumber == 0 && p.Spec.LocalWorkloadSelector == "" {
		add(RuleASNumber, "spec.asNumber", fmt.Sprintf("BGPPeer %s: spec.peerIP %s without spec.asNumber: calico-node renders \"neighbor ... as 0\", which BIRD refuses, so the BGP configuration of every node the peer applies to stops loading and all their sessions go down; set spec.asNumber (the cluster's AS for an iBGP peer)",
			o.Name, Truncate(p.Spec.PeerIP, 64)))
	}
	if as := uint32(p.Spec.ASNumber); as != 0 {
		if msg := e.asProblem(as, true); msg != "" {
			add(RuleASNumber, "spec.asNumber", fmt.Sprintf("BGPPeer %s: %s", o.Name, msg))
		}
	}
	for _, ce := range calicoErrors(calicovalidator.Validate(o.Peer)) {
		if ce.field == "spec.nodeSelector" || ce.field == "spec.peerSelector" {
			continue // selector-syntax says it better
		}
		add(RulePeerFields, ce.field, fmt.Sprintf("BGPPeer %s: %s", o.Name, ce.msg))
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
		return []fieldError{{field: "spec", msg: err.Error()}}
	}
	var out []fieldError
	for _, f := range verr.ErroredFields {
		name := strings.TrimPrefix(f.Name, "Spec.")
		field := "spec." + strings.ToLower(name[:1]) + name[1:]
		switch {
		case f.Name == "Name":
			field = "metadata.name"
		case strings.EqualFold(name, "PeerIP"):
			field = "spec.peerIP"
		case strings.EqualFold(name, "ASNumber"):
			field = "spec.asNumber"
		}
		msg := f.Reason
		if msg == "" {
			msg = fmt.Sprintf("invalid value %v", f.Value)
		}
		out = append(out, fieldError{field: field, msg: fmt.Sprintf("%s: %s", field, msg)})
	}
	return out
}
