package validate

import (
	"maps"
	"strings"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Builders for the rule tests: objects as the API server holds them, no YAML surgery.

type nodeOpt func(k *corev1.Node)

// node is a Ready core/v1 Node with a BGP address.
func node(name, ip string, opts ...nodeOpt) *calico.Object {
	k := &corev1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name},
			Annotations: map[string]string{calico.AnnotationIPv4Address: ip + "/24"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(k)
	}
	return &calico.Object{Kind: calico.KindNode, Name: name, CoreNode: k, Node: calico.NodeFromCore(k)}
}

// reflector is a node with a cluster ID and the reflector label.
func reflector(name, ip, cid string, opts ...nodeOpt) *calico.Object {
	return node(name, ip, append([]nodeOpt{clusterID(cid), label("route-reflector", "true")}, opts...)...)
}

func clusterID(id string) nodeOpt {
	return func(k *corev1.Node) { k.Annotations[calico.AnnotationClusterID] = id }
}
func label(key, value string) nodeOpt { return func(k *corev1.Node) { k.Labels[key] = value } }
func nodeAS(as string) nodeOpt {
	return func(k *corev1.Node) { k.Annotations[calico.AnnotationASNumber] = as }
}
func notReady(k *corev1.Node)  { k.Status.Conditions[0].Status = corev1.ConditionFalse }
func noAddress(k *corev1.Node) { delete(k.Annotations, calico.AnnotationIPv4Address) }
func annotation(key, value string) nodeOpt {
	return func(k *corev1.Node) { k.Annotations[key] = value }
}

// bgpPeer is a crd.projectcalico.org/v1 BGPPeer.
func bgpPeer(name string, spec apiv3.BGPPeerSpec) *calico.Object {
	return &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: name, Peer: &apiv3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}}
}

func selPeer(name, nodeSel, peerSel string) *calico.Object {
	return bgpPeer(name, apiv3.BGPPeerSpec{NodeSelector: nodeSel, PeerSelector: peerSel})
}

// bgpConfig is a crd.projectcalico.org/v1 BGPConfiguration.
func bgpConfig(name string, spec apiv3.BGPConfigurationSpec) *calico.Object {
	return &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: name, Config: &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}}
}

// bgpFilter is a crd.projectcalico.org/v1 BGPFilter.
func bgpFilter(name string, spec apiv3.BGPFilterSpec) *calico.Object {
	return &calico.Object{Kind: calico.KindBGPFilter, Group: calico.GroupCRD, Name: name, Filter: &apiv3.BGPFilter{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}}
}

// noTransit is Calico's own example of a filter that stops transit (projectcalico/calico#8149).
func noTransit() *calico.Object {
	return bgpFilter("no-transit", apiv3.BGPFilterSpec{ExportV4: []apiv3.BGPFilterRuleV4{{Action: apiv3.Reject, Source: apiv3.BGPFilterSourceRemotePeers}}})
}

// ipPool is a crd.projectcalico.org/v1 IPPool (IPIP Always unless spec says otherwise).
func ipPool(name, cidr string, opts ...func(*apiv3.IPPoolSpec)) *calico.Object {
	spec := apiv3.IPPoolSpec{CIDR: cidr, IPIPMode: apiv3.IPIPModeAlways}
	for _, o := range opts {
		o(&spec)
	}
	return &calico.Object{Kind: calico.KindIPPool, Group: calico.GroupCRD, Name: name, Pool: &apiv3.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}}
}

func noExport(s *apiv3.IPPoolSpec) { s.DisableBGPExport = true }
func vxlan(s *apiv3.IPPoolSpec)    { s.IPIPMode, s.VXLANMode = apiv3.IPIPModeNever, apiv3.VXLANModeAlways }

// affinity is a confirmed BlockAffinity: node holds block cidr.
func affinity(node, cidr string) *calico.Object {
	return &calico.Object{Kind: calico.KindBlockAffinity, Group: calico.GroupCRD, Name: node + "-" + cidr, Affinity: &calico.Affinity{Node: node, CIDR: cidr, State: "confirmed"}}
}

func withFilters(o *calico.Object, names ...string) *calico.Object {
	p := *o.Peer
	p.Spec.Filters = names
	return &calico.Object{Kind: o.Kind, Group: o.Group, Name: o.Name, Peer: &p}
}

func withPassword(o *calico.Object, secret string) *calico.Object {
	p := *o.Peer
	p.Spec.Password = &apiv3.BGPPassword{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "password"}}
	return &calico.Object{Kind: o.Kind, Group: o.Group, Name: o.Name, Peer: &p}
}

func mesh(on bool) *calico.Object {
	as := numorstring.ASNumber(64512)
	return bgpConfig("default", apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: &on, ASNumber: &as})
}

func asn(n uint32) *numorstring.ASNumber { a := numorstring.ASNumber(n); return &a }

// seed is the seed story's end state: reflectors r1, r2 sharing 1.0.0.1, clients c1-c3, the
// two BGPPeers, mesh off.
func seed() []*calico.Object {
	return []*calico.Object{
		reflector("r1", "10.0.0.1", "1.0.0.1"), reflector("r2", "10.0.0.2", "1.0.0.1"),
		node("c1", "10.0.0.11"), node("c2", "10.0.0.12"), node("c3", "10.0.0.13"),
		selPeer("clients", "!has(route-reflector)", "has(route-reflector)"),
		selPeer("reflectors", "has(route-reflector)", "has(route-reflector)"),
		mesh(false),
	}
}

// without returns objs without the named ones, with replacements appended.
func without(objs []*calico.Object, names ...string) []*calico.Object {
	var out []*calico.Object
	for _, o := range objs {
		if !contains(names, o.Name) {
			out = append(out, o)
		}
	}
	return out
}

func with(objs []*calico.Object, more ...*calico.Object) []*calico.Object {
	return append(without(objs, namesOf(more)...), more...)
}

func namesOf(objs []*calico.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// want is one expected finding: rule, action, object (Kind/name, or Kind.group/name), field
// path and a fragment of the message.
type want struct {
	rule, action, object, field, fragment string
}

func (w want) matches(f Finding) bool {
	return f.Rule == w.rule && string(f.Action) == w.action && f.Object.String() == w.object && f.Field == w.field && strings.Contains(f.Message, w.fragment)
}

// ruleCase judges state (an audit), or change against state (admission), and expects
// exactly the findings of want for the rule under test.
type ruleCase struct {
	cfg    Config
	state  []*calico.Object
	change *model.Change
	want   []want
	// example: the first finding wanted is the rule's Example (see TestRules); one case per
	// rule says so.
	example bool
}

func create(o *calico.Object) *model.Change { return &model.Change{Operation: model.Create, Object: o} }
func update(old, o *calico.Object) *model.Change {
	return &model.Change{Operation: model.Update, Object: o, Old: old}
}
func remove(old *calico.Object) *model.Change {
	return &model.Change{Operation: model.Delete, Old: old}
}

func runRuleCases(t *testing.T, rule string, cases map[string]ruleCase) {
	t.Helper()
	examples := 0
	for _, c := range cases {
		if c.example {
			examples++
		}
	}
	if examples != 1 {
		t.Errorf("rule %s: %d cases are marked example, want 1", rule, examples)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := New(c.cfg)
			s := model.NewSnapshot(calico.NewState(c.state))
			var got []Finding
			if c.change == nil {
				got = e.Audit(t.Context(), s)
			} else {
				got = e.Evaluate(t.Context(), *c.change, s)
			}
			var mine []Finding
			for _, f := range got {
				if f.Rule == rule {
					mine = append(mine, f)
				}
			}
			matched := make([]bool, len(mine))
			for _, w := range c.want {
				found := false
				for i, f := range mine {
					if !matched[i] && w.matches(f) {
						matched[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("missing %+v", w)
				}
			}
			for i, f := range mine {
				if !matched[i] {
					t.Errorf("unexpected %s %s %s %s: %s", f.Action, f.Rule, f.Object, f.Field, f.Message)
				}
			}
			if t.Failed() {
				t.Logf("all findings:\n%s", dump(got))
			}
			checkSameModel(t, c)
			if c.example {
				if len(c.want) == 0 {
					t.Fatalf("the example case of %s wants no finding", rule)
				}
				for i, f := range mine {
					if matched[i] && c.want[0].matches(f) {
						recordExample(t, rule, exampleOf(f))
						break
					}
				}
			}
		})
	}
}

// checkSameModel: in the state before c's change and after it, a change to any node's
// labels that no selector reads, or to its reflector label, and a change to any BGPPeer's
// metadata only, are judged the same whether or not the checks marked model run (see
// judgment.sameModel); and the state after the BGPPeer's change, whose analysis
// model.Snapshot.After keeps, audits as it does analysed afresh.
func checkSameModel(t *testing.T, c ruleCase) {
	t.Helper()
	states := []*calico.State{calico.NewState(c.state)}
	if c.change != nil {
		states = append(states, model.Apply(states[0], *c.change))
	}
	fast, full := New(c.cfg), New(c.cfg)
	full.everyCheck = true
	for _, st := range states {
		s := model.NewSnapshot(st)
		for _, name := range st.NodeNames() {
			old := st.Node(name)
			for _, l := range []string{"rrguard-unread", fast.cfg.ReflectorLabel} {
				n := *old
				n.K8sLabels = maps.Clone(old.K8sLabels)
				if _, ok := n.K8sLabels[l]; ok {
					delete(n.K8sLabels, l)
				} else {
					n.K8sLabels[l] = "true"
				}
				ch := model.Change{Operation: model.Update, Old: &calico.Object{Kind: calico.KindNode, Name: name, Node: old},
					Object: &calico.Object{Kind: calico.KindNode, Name: name, Node: &n}}
				got, want := fast.Evaluate(t.Context(), ch, s), full.Evaluate(t.Context(), ch, s)
				if d := dump(got); d != dump(want) {
					t.Errorf("node %s: label %s toggled: with the model checks skipped:\n%s\nwith every check:\n%s", name, l, d, dump(want))
				}
			}
		}
		for _, name := range st.PeerNames() {
			old := st.Object(calico.KindBGPPeer, name)
			p := old.Peer.DeepCopy()
			p.Labels = map[string]string{"app.kubernetes.io/managed-by": "argocd"}
			p.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
			ch := model.Change{Operation: model.Update, Old: old, Object: &calico.Object{Kind: calico.KindBGPPeer, Group: old.Group, Name: name, Peer: p}}
			got, want := fast.Evaluate(t.Context(), ch, s), full.Evaluate(t.Context(), ch, s)
			if d := dump(got); d != dump(want) {
				t.Errorf("BGPPeer %s: metadata changed: with the model checks skipped:\n%s\nwith every check:\n%s", name, d, dump(want))
			}
			after := s.After(ch)
			if after.Analysis != s.Analysis {
				t.Errorf("BGPPeer %s: metadata changed: the analysis was made again", name)
			}
			if kept, fresh := dump(full.Audit(t.Context(), after)), dump(full.Audit(t.Context(), model.NewSnapshot(after.State))); kept != fresh {
				t.Errorf("BGPPeer %s: metadata changed: the audit with the analysis kept:\n%s\nanalysed afresh:\n%s", name, kept, fresh)
			}
			// A change to its spec, however small, is analysed again.
			p = p.DeepCopy()
			p.Spec.KeepOriginalNextHop = !p.Spec.KeepOriginalNextHop
			ch.Object = &calico.Object{Kind: calico.KindBGPPeer, Group: old.Group, Name: name, Peer: p}
			if s.After(ch).Analysis == s.Analysis {
				t.Errorf("BGPPeer %s: spec changed: the analysis was kept", name)
			}
		}
	}
}

// ruleTests holds one test per built-in rule; TestRules fails for a rule without one.
var ruleTests = map[string]func(t *testing.T){
	RuleClusterIDFormat: func(t *testing.T) {
		runRuleCases(t, RuleClusterIDFormat, map[string]ruleCase{
			"dotted quad":     {state: seed()},
			"not IPv4":        {example: true, state: with(seed(), reflector("r1", "10.0.0.1", "300.34.3.1")), want: []want{{RuleClusterIDFormat, "deny", "Node/r1", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "not an IPv4 address"}}},
			"masked CIDR":     {state: with(seed(), reflector("r1", "10.0.0.1", "244.0.0.1/32")), want: []want{{RuleClusterIDFormat, "deny", "Node/r1", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "CIDR"}}},
			"admission: typo": {state: seed(), change: update(reflector("r1", "10.0.0.1", "1.0.0.1"), reflector("r1", "10.0.0.1", "1.0.0.1.")), want: []want{{RuleClusterIDFormat, "deny", "Node/r1", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "1.0.0.1."}}},
			"admission: as it was (not introduced)": {state: with(seed(), reflector("r1", "10.0.0.1", "1.0.0.256")),
				change: update(reflector("r1", "10.0.0.1", "1.0.0.256"), reflector("r1", "10.0.0.1", "1.0.0.256", label("team", "net")))},
		})
	},
	RuleClusterIDConsistency: func(t *testing.T) {
		zoned := []*calico.Object{
			reflector("r1", "10.0.0.1", "1.0.0.1", label("zone", "a")), reflector("r2", "10.0.0.2", "1.0.0.1", label("zone", "b")),
			node("a1", "10.0.0.11", label("zone", "a")), node("b1", "10.0.0.12", label("zone", "b")),
			selPeer("zone-a", "zone == 'a' && !has(route-reflector)", "zone == 'a' && has(route-reflector)"),
			selPeer("zone-b", "zone == 'b' && !has(route-reflector)", "zone == 'b' && has(route-reflector)"),
			selPeer("reflectors", "has(route-reflector)", "has(route-reflector)"), mesh(false),
		}
		runRuleCases(t, RuleClusterIDConsistency, map[string]ruleCase{
			"every client peers with every reflector of the ID": {state: seed()},
			"partial peering with a shared ID (#2735)": {example: true, state: zoned, want: []want{
				{RuleClusterIDConsistency, "deny", "Node/a1", "", "peers with only some of the reflectors that share cluster ID 1.0.0.1 (r1, r2)"},
				{RuleClusterIDConsistency, "deny", "Node/b1", "", "b1 peers with only some"}}},
			"an ID per zone": {state: with(zoned, reflector("r2", "10.0.0.2", "1.0.0.2", label("zone", "b")))},
			"policy shared, two IDs": {cfg: Config{ClusterIDPolicy: ClusterIDShared}, state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.2")),
				want: []want{{RuleClusterIDConsistency, "deny", "Node/r1", "", "clusterIDPolicy is shared but reflectors use 2 cluster IDs (1.0.0.1, 1.0.0.2)"}}},
			"policy shared, one ID": {cfg: Config{ClusterIDPolicy: ClusterIDShared}, state: seed()},
			"admission: policy shared, a second ID introduced": {cfg: Config{ClusterIDPolicy: ClusterIDShared}, state: seed(),
				change: update(reflector("r2", "10.0.0.2", "1.0.0.1"), reflector("r2", "10.0.0.2", "1.0.0.2")),
				want:   []want{{RuleClusterIDConsistency, "deny", "Node/r2", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "clusterIDPolicy is shared"}}},
			"admission: policy shared, already two IDs": {cfg: Config{ClusterIDPolicy: ClusterIDShared}, state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.2")),
				change: create(node("c4", "10.0.0.14"))},
			"policy unique, shared ID": {cfg: Config{ClusterIDPolicy: ClusterIDUnique}, state: seed(),
				want: []want{{RuleClusterIDConsistency, "deny", "Node/r1", "", "clusterIDPolicy is unique but r1, r2 share cluster ID 1.0.0.1"}}},
			"policy unique, distinct IDs": {cfg: Config{ClusterIDPolicy: ClusterIDUnique}, state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.2"))},
		})
	},
	RuleASNumber: func(t *testing.T) {
		runRuleCases(t, RuleASNumber, map[string]ruleCase{
			"private AS":          {state: with(seed(), node("c1", "10.0.0.11", nodeAS("64512")))},
			"node AS unparsable":  {state: with(seed(), node("c1", "10.0.0.11", nodeAS("1.1.1"))), want: []want{{RuleASNumber, "deny", "Node/c1", "metadata.annotations[projectcalico.org/ASNumber]", "calico-node ignores it"}}},
			"node AS 0":           {state: with(seed(), node("c1", "10.0.0.11", nodeAS("0"))), want: []want{{RuleASNumber, "deny", "Node/c1", "metadata.annotations[projectcalico.org/ASNumber]", "AS number 0 is reserved"}}},
			"node AS above int32": {state: []*calico.Object{node("a", "10.0.0.1", nodeAS("4200000000")), node("b", "10.0.0.2", nodeAS("4200000000"))}},
			"config AS_TRANS":     {state: []*calico.Object{node("a", "10.0.0.1"), bgpConfig("default", apiv3.BGPConfigurationSpec{ASNumber: asn(23456)})}, want: []want{{RuleASNumber, "deny", "BGPConfiguration.crd.projectcalico.org/default", "spec.asNumber", "AS_TRANS"}}},
			"peer AS above int32": {state: with(seed(), bgpPeer("ext", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 4200000000})), want: []want{{RuleASNumber, "deny", "BGPPeer.crd.projectcalico.org/ext", "spec.asNumber", "int32"}}},
			"peerIP without AS":   {state: with(seed(), bgpPeer("ext", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1"})), want: []want{{RuleASNumber, "deny", "BGPPeer.crd.projectcalico.org/ext", "spec.asNumber", "without spec.asNumber"}}},
			"not CRD-backed":      {cfg: Config{CRDBacked: new(false)}, state: with(seed(), bgpPeer("ext", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 4200000000}))},
			"reflector in another AS": {example: true, state: with(seed(), reflector("r1", "10.0.0.1", "1.0.0.1", nodeAS("65001")), reflector("r2", "10.0.0.2", "1.0.0.1", nodeAS("65001"))),
				want: []want{{RuleASNumber, "deny", "Node/r1", "metadata.annotations[projectcalico.org/ASNumber]", "reflector r1 is in AS 65001 but its peers c1, c2, c3 are in AS 64512"},
					{RuleASNumber, "deny", "Node/r2", "metadata.annotations[projectcalico.org/ASNumber]", "reflector r2 is in AS 65001"}}},
			"admission: a reflector moved to another AS": {state: seed(), change: update(reflector("r1", "10.0.0.1", "1.0.0.1"), reflector("r1", "10.0.0.1", "1.0.0.1", nodeAS("65001"))),
				want: []want{{RuleASNumber, "deny", "Node/r1", "metadata.annotations[projectcalico.org/ASNumber]", "reflector r1 is in AS 65001"}}},
		})
	},
	RulePeerFields: func(t *testing.T) {
		runRuleCases(t, RulePeerFields, map[string]ruleCase{
			"selector peers": {state: seed()},
			"peerIP and peerSelector": {example: true, state: with(seed(), bgpPeer("both", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 64512, PeerSelector: "all()"})),
				want: []want{{RulePeerFields, "deny", "BGPPeer.crd.projectcalico.org/both", "spec.peerIP", "PeerIP field must be empty when PeerSelector is specified"},
					{RulePeerFields, "deny", "BGPPeer.crd.projectcalico.org/both", "spec.asNumber", "ASNumber field must be empty when PeerSelector is specified"}}},
			"mesh switch outside default": {state: with(seed(), bgpConfig("node.c1", apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: new(true)})),
				want: []want{{RulePeerFields, "deny", "BGPConfiguration.crd.projectcalico.org/node.c1", "spec.nodeToNodeMeshEnabled", "may only be set in the BGPConfiguration named default"}}},
			"BGPFilter CIDR with host bits (BIRD refuses the configuration)": {state: with(seed(), bgpFilter("f", apiv3.BGPFilterSpec{ExportV4: []apiv3.BGPFilterRuleV4{{Action: apiv3.Reject, CIDR: "10.0.0.1/8", MatchOperator: apiv3.In}}})),
				want: []want{{RulePeerFields, "deny", "BGPFilter.crd.projectcalico.org/f", "spec.exportV4[0].cidr", `BGPFilter f: spec.exportV4[0].cidr: "10.0.0.1/8" is not a network of the rule's family with its host bits clear`}}},
			"BGPFilter CIDR without operator": {state: with(seed(), bgpFilter("f", apiv3.BGPFilterSpec{ExportV4: []apiv3.BGPFilterRuleV4{{Action: apiv3.Reject, CIDR: "10.0.0.0/8"}}})),
				want: []want{{RulePeerFields, "deny", "BGPFilter.crd.projectcalico.org/f", "spec.exportV4[0].cidr", "MatchOperator cannot be empty when CIDR is not"}}},
			"IPPool": {state: with(seed(), ipPool("pods", "192.168.0.0/16"))},
		})
	},
	RuleSelectorSyntax: func(t *testing.T) {
		runRuleCases(t, RuleSelectorSyntax, map[string]ruleCase{
			"valid":           {state: seed()},
			"unclosed has(":   {example: true, state: with(seed(), selPeer("clients", "!has(route-reflector)", "has(route-reflector")), want: []want{{RuleSelectorSyntax, "deny", "BGPPeer.crd.projectcalico.org/clients", "spec.peerSelector", "calico-node would log it and match nothing"}}},
			"too long":        {state: with(seed(), selPeer("clients", "has(a)"+strings.Repeat(" ", 5000), "all()")), want: []want{{RuleSelectorSyntax, "deny", "BGPPeer.crd.projectcalico.org/clients", "spec.nodeSelector", "characters long"}}},
			"admission: same": {state: with(seed(), selPeer("x", "has(", "all()")), change: update(selPeer("x", "has(", "all()"), selPeer("x", "has(", "all() "))},
		})
	},
	RuleSelectorMatchesNothing: func(t *testing.T) {
		runRuleCases(t, RuleSelectorMatchesNothing, map[string]ruleCase{
			"selectors match": {state: seed()},
			"label typo": {example: true, state: with(seed(), selPeer("clients", "!has(route-reflector)", "has(router-reflector)")),
				want: []want{{RuleSelectorMatchesNothing, "warn", "BGPPeer.crd.projectcalico.org/clients", "spec.peerSelector", `did you mean label "route-reflector" instead of "router-reflector"?`}}},
			"node-scoped peer for no node": {state: with(seed(), bgpPeer("ghost", apiv3.BGPPeerSpec{Node: "ghost", PeerSelector: "has(route-reflector)"})),
				want: []want{{RuleSelectorMatchesNothing, "warn", "BGPPeer.crd.projectcalico.org/ghost", "spec.node", `spec.node "ghost" is no node`}}},
			"admission: already matching nothing": {state: with(seed(), selPeer("x", "has(nope)", "all()")), change: create(node("c4", "10.0.0.14"))},
			"admission: new peer with a typo": {state: seed(), change: create(selPeer("x", "has(zone)", "all()")),
				want: []want{{RuleSelectorMatchesNothing, "warn", "BGPPeer.crd.projectcalico.org/x", "spec.nodeSelector", "selects no node with a BGP address"}}},
		})
	},
	RulePeerTargetsNonReflector: func(t *testing.T) {
		runRuleCases(t, RulePeerTargetsNonReflector, map[string]ruleCase{
			"peers select reflectors": {state: seed()},
			"labelled without a cluster ID": {example: true, state: with(seed(), node("fake", "10.0.0.9", label("route-reflector", "true"))),
				want: []want{{RulePeerTargetsNonReflector, "warn", "BGPPeer.crd.projectcalico.org/clients", "spec.peerSelector", "selects fake, which has no route-reflector cluster ID"},
					{RulePeerTargetsNonReflector, "warn", "BGPPeer.crd.projectcalico.org/reflectors", "spec.peerSelector", "selects fake"}}},
			"mesh on": {state: with(seed(), node("fake", "10.0.0.9", label("route-reflector", "true")), mesh(true))},
		})
	},
	RuleMeshDisable: func(t *testing.T) {
		one := with(without(seed(), "r2"), mesh(true))
		runRuleCases(t, RuleMeshDisable, map[string]ruleCase{
			"two reflectors":                 {state: seed()},
			"audit: one reflector, mesh off": {state: without(seed(), "r2"), want: []want{{RuleMeshDisable, "deny", "BGPConfiguration.crd.projectcalico.org/default", "spec.nodeToNodeMeshEnabled", "the node-to-node mesh is off with only 1 Ready route reflector (r1)"}}},
			"admission: mesh off with one reflector": {example: true, state: one, change: update(mesh(true), mesh(false)),
				want: []want{{RuleMeshDisable, "deny", "BGPConfiguration.crd.projectcalico.org/default", "spec.nodeToNodeMeshEnabled", "would be off with only 1 Ready route reflector (r1)"}}},
			"admission: a NotReady reflector is lost": {state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.1", notReady), mesh(true)), change: update(mesh(true), mesh(false)),
				want: []want{{RuleMeshDisable, "deny", "BGPConfiguration.crd.projectcalico.org/default", "spec.nodeToNodeMeshEnabled", "lost reflector: r2 (NotReady)"}}},
			"minReflectors 1": {cfg: Config{MinReflectors: 1}, state: one, change: update(mesh(true), mesh(false))},
			// felix routes VXLAN pools: BGP carries no pod route that matters.
			"admission: VXLAN pools only, no reflector": {state: with(without(seed(), "r1", "r2", "clients", "reflectors"), ipPool("pods", "10.244.0.0/16", vxlan), mesh(true)), change: update(mesh(true), mesh(false))},
			"admission: VXLAN pool beside an IPIP one, one reflector": {state: with(one, ipPool("pods", "10.244.0.0/16", vxlan), ipPool("ipip", "10.245.0.0/16")), change: update(mesh(true), mesh(false)),
				want: []want{{RuleMeshDisable, "deny", "BGPConfiguration.crd.projectcalico.org/default", "spec.nodeToNodeMeshEnabled", "would be off with only 1 Ready route reflector (r1)"}}},
			"admission: mesh already off (judged by the other rules)": {state: seed(), change: remove(reflector("r2", "10.0.0.2", "1.0.0.1"))},
		})
	},
	RuleRoutePropagation: func(t *testing.T) {
		runRuleCases(t, RuleRoutePropagation, map[string]ruleCase{
			"seed": {state: seed()},
			"mesh off before the peers exist": {example: true, state: without(seed(), "clients", "reflectors"),
				want: []want{{RuleRoutePropagation, "deny", "Node/c1", "", "c1, c2, c3 would exchange no IPv4 pod routes with any other node: with the mesh off c1, c2, c3 have no BGP session"},
					{RuleRoutePropagation, "deny", "Node/r1", "", "r1, r2 would exchange no IPv4 pod routes with any other node: with the mesh off r1, r2 have no BGP session"}}},
			"reflectors of a shared ID not peered": {state: without(seed(), "reflectors"),
				want: []want{{RuleRoutePropagation, "deny", "Node/r1", "", "reflectors of cluster ID 1.0.0.1 (r1, r2) learn one another's routes only over a direct session"}}},
			"admission: deleting the client peer": {state: seed(), change: remove(selPeer("clients", "!has(route-reflector)", "has(route-reflector)")),
				want: []want{{RuleRoutePropagation, "deny", "BGPPeer.crd.projectcalico.org/clients", "metadata.name", "c1, c2, c3 would exchange no IPv4 pod routes with any other node"}}},
			"admission: already broken, unrelated node": {state: without(seed(), "reflectors"), change: update(node("c1", "10.0.0.11"), node("c1", "10.0.0.11", label("team", "x")))},
			"no-transit filter on the client peering (calico#8149)": {state: with(seed(), withFilters(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), "no-transit"), noTransit()),
				want: []want{{RuleRoutePropagation, "deny", "Node/c1", "", "c1, c2, c3 would not learn one another's IPv4 pod routes: BGPFilter no-transit exportV4 rule 0 (Reject RemotePeers) on BGPPeer clients: reflectors r1, r2 stop passing clients' routes on"}}},
			"admission: attaching no-transit to the client peering": {state: with(seed(), noTransit()),
				change: update(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), withFilters(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), "no-transit")),
				want:   []want{{RuleRoutePropagation, "deny", "BGPPeer.crd.projectcalico.org/clients", "spec", "BGPFilter no-transit exportV4 rule 0 (Reject RemotePeers) on BGPPeer clients"}}},
			"admission: creating the filter a peering names": {state: with(seed(), withFilters(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), "no-transit")),
				change: create(noTransit()),
				want:   []want{{RuleRoutePropagation, "deny", "BGPFilter.crd.projectcalico.org/no-transit", "spec.exportV4[0]", "reflectors r1, r2 stop passing clients' routes on"}}},
			"admission: a CIDR filter on the client peering": {state: with(seed(), bgpFilter("pods", apiv3.BGPFilterSpec{ExportV4: []apiv3.BGPFilterRuleV4{{Action: apiv3.Reject, CIDR: "192.168.0.0/16", MatchOperator: apiv3.In}}})),
				change: update(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), withFilters(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), "pods")),
				want:   []want{{RuleRoutePropagation, "deny", "BGPPeer.crd.projectcalico.org/clients", "spec", "BGPFilter pods exportV4 rule 0 (Reject In 192.168.0.0/16) on BGPPeer clients"}}},
			"admission: no-transit on a peering with an outside router": {state: with(seed(), noTransit()),
				change: create(bgpPeer("tor", apiv3.BGPPeerSpec{NodeSelector: "has(route-reflector)", PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"no-transit"}}))},
			"admission: disableBGPExport on the only pool": {state: with(seed(), ipPool("pods", "192.168.0.0/16")), change: update(ipPool("pods", "192.168.0.0/16"), ipPool("pods", "192.168.0.0/16", noExport)),
				want: []want{{RuleRoutePropagation, "deny", "IPPool.crd.projectcalico.org/pods", "spec.disableBGPExport", "IPPool pods has disableBGPExport: true, so no node exports its blocks"}}},
			"admission: disableBGPExport on a VXLAN pool": {state: with(seed(), ipPool("pods", "192.168.0.0/16", vxlan)), change: update(ipPool("pods", "192.168.0.0/16", vxlan), ipPool("pods", "192.168.0.0/16", vxlan, noExport))},
			"admission: deleting the pool nodes hold blocks of": {state: with(seed(), ipPool("pods", "192.168.0.0/16"), affinity("c1", "192.168.1.0/26")), change: remove(ipPool("pods", "192.168.0.0/16")),
				want: []want{{RuleRoutePropagation, "deny", "IPPool.crd.projectcalico.org/pods", "metadata.name", "are in no IPPool"}}},
			"VXLAN pool, mesh off, no peers": {state: with(without(seed(), "clients", "reflectors"), ipPool("pods", "192.168.0.0/16", vxlan))},
			"admission: a new client joins a broken cluster": {state: without(seed(), "clients", "reflectors"), change: create(node("c4", "10.0.0.14")),
				want: []want{
					// c4 and the reflectors lose each other's routes: both sides are isolated.
					{RuleRoutePropagation, "deny", "Node/c4", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "c1, c2, c3, c4 would exchange no IPv4 pod routes with any other node"},
					{RuleRoutePropagation, "deny", "Node/c4", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "r1, r2 would exchange no IPv4 pod routes with any other node"}}},
		})
	},
	RuleReflectorWithoutPeers: func(t *testing.T) {
		midway := []*calico.Object{reflector("r1", "10.0.0.1", "1.0.0.1"), node("c1", "10.0.0.11"), node("c2", "10.0.0.12"), mesh(true)}
		runRuleCases(t, RuleReflectorWithoutPeers, map[string]ruleCase{
			"mesh on, no reflector":         {state: []*calico.Object{node("c1", "10.0.0.11"), node("c2", "10.0.0.12"), mesh(true)}},
			"mesh on, reflector not peered": {example: true, state: midway, want: []want{{RuleReflectorWithoutPeers, "warn", "Node/r1", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "node r1 holds cluster ID 1.0.0.1, so it left the node-to-node mesh"}}},
			"mesh on, reflector peered":     {state: with(midway, selPeer("clients", "!has(route-reflector)", "has(route-reflector)"))},
			"admission: was already alone":  {state: midway, change: update(reflector("r1", "10.0.0.1", "1.0.0.1"), reflector("r1", "10.0.0.1", "1.0.0.1", label("team", "x")))},
		})
	},
	RuleReflectorRedundancy: func(t *testing.T) {
		bridge := []*calico.Object{
			reflector("ra1", "10.0.0.1", "1.0.0.1", label("zone", "a")), reflector("ra2", "10.0.0.2", "1.0.0.1", label("zone", "a")),
			reflector("rb1", "10.0.0.3", "1.0.0.2", label("zone", "b")), reflector("rb2", "10.0.0.4", "1.0.0.2", label("zone", "b")),
			node("a1", "10.0.0.11", label("zone", "a")), node("b1", "10.0.0.12", label("zone", "b")),
			selPeer("zone-a", "zone == 'a'", "zone == 'a' && has(route-reflector)"), selPeer("zone-b", "zone == 'b'", "zone == 'b' && has(route-reflector)"),
			bgpPeer("bridge", apiv3.BGPPeerSpec{Node: "ra1", PeerSelector: "zone == 'b' && has(route-reflector)"}), mesh(false),
		}
		runRuleCases(t, RuleReflectorRedundancy, map[string]ruleCase{
			"two reflectors per client": {state: seed()},
			"one reflector NotReady": {example: true, state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.1", notReady)),
				want: []want{{RuleReflectorRedundancy, "deny", "Node/c1", "", "c1, c2, c3 would peer with only 1 route reflector (r1) while 2 are required"}}},
			"single point of failure between zones": {state: bridge,
				want: []want{{RuleReflectorRedundancy, "deny", "Node/ra1", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "reflector ra1 is a single point of failure"}}},
			"minReflectors 1": {cfg: Config{MinReflectors: 1}, state: bridge},
			"admission: deleting a reflector": {state: seed(), change: remove(reflector("r2", "10.0.0.2", "1.0.0.1")),
				want: []want{{RuleReflectorRedundancy, "deny", "Node/r2", "metadata.name", "c1, c2, c3 would peer with only 1 route reflector (r1)"}}},
			"admission: a client joins, one reflector short already": {state: with(seed(), reflector("r2", "10.0.0.2", "1.0.0.1", notReady)), change: create(node("c4", "10.0.0.14")),
				want: []want{{RuleReflectorRedundancy, "deny", "Node/c4", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "c4 would peer with only 1 route reflector (r1)"}}},
			"admission: a plain node's label does not run the what-ifs": {state: bridge, change: update(node("a1", "10.0.0.11", label("zone", "a")), node("a1", "10.0.0.11", label("zone", "a"), label("team", "x")))},
		})
	},
	RuleReflectorRemoval: func(t *testing.T) {
		runRuleCases(t, RuleReflectorRemoval, map[string]ruleCase{
			"audit never reports it": {state: without(seed(), "clients")},
			"deleting the client peer": {example: true, state: seed(), change: remove(selPeer("clients", "!has(route-reflector)", "has(route-reflector)")),
				want: []want{{RuleReflectorRemoval, "deny", "BGPPeer.crd.projectcalico.org/clients", "metadata.name", "deleting BGPPeer clients breaks the route-reflector topology"}}},
			"clearing a cluster ID": {state: seed(), change: update(reflector("r2", "10.0.0.2", "1.0.0.1"), node("r2", "10.0.0.2", label("route-reflector", "true"))),
				want: []want{{RuleReflectorRemoval, "deny", "Node/r2", "metadata.annotations[projectcalico.org/RouteReflectorClusterID]", "clearing the cluster ID of reflector r2"}}},
			"deleting a reflector that is not needed": {state: with(seed(), reflector("r3", "10.0.0.3", "1.0.0.1")), change: remove(reflector("r3", "10.0.0.3", "1.0.0.1"))},
			"removal under warn":                      {cfg: Config{Rules: map[string]Action{RuleRoutePropagation: Warn, RuleReflectorRedundancy: Warn}}, state: seed(), change: remove(reflector("r2", "10.0.0.2", "1.0.0.1"))},
		})
	},
	RuleReflectorLabel: func(t *testing.T) {
		runRuleCases(t, RuleReflectorLabel, map[string]ruleCase{
			"label and ID agree": {state: seed()},
			"label without ID": {example: true, state: with(seed(), node("c1", "10.0.0.11", label("route-reflector", "true"))),
				want: []want{{RuleReflectorLabel, "warn", "Node/c1", "metadata.labels", "node c1 has the label route-reflector but no cluster ID"}}},
			"ID without label, auto-fill on": {state: with(seed(), node("r3", "10.0.0.3", clusterID("1.0.0.1")))},
			"ID without label, auto-fill off": {cfg: Config{AutoFillLabel: new(false)}, state: with(seed(), node("r3", "10.0.0.3", clusterID("1.0.0.1"))),
				want: []want{{RuleReflectorLabel, "warn", "Node/r3", "metadata.labels", "run kubectl label node r3 route-reflector=true"}}},
			"unreadable projectcalico.org/labels": {state: with(seed(), node("c1", "10.0.0.11", annotation(calico.AnnotationLabels, "{"))),
				want: []want{{RuleReflectorLabel, "warn", "Node/c1", "metadata.annotations[projectcalico.org/labels]", "is not a JSON map of strings"}}},
			"another reflector label": {cfg: Config{ReflectorLabel: "rr"}, state: with(seed(), node("c1", "10.0.0.11", label("rr", ""))),
				want: []want{{RuleReflectorLabel, "warn", "Node/c1", "metadata.labels", "has the label rr but no cluster ID"}}},
		})
	},
	RuleReflectorAddress: func(t *testing.T) {
		runRuleCases(t, RuleReflectorAddress, map[string]ruleCase{
			"reflectors with addresses": {state: seed()},
			"reflector without address": {example: true, state: with(seed(), reflector("r3", "10.0.0.3", "1.0.0.1", noAddress)),
				want: []want{{RuleReflectorAddress, "warn", "Node/r3", "metadata.annotations[projectcalico.org/IPv4Address]", "node r3 has cluster ID 1.0.0.1 but no valid BGP address"}}},
			"client without address": {state: with(seed(), node("c4", "10.0.0.14", noAddress))},
			"admission: the address goes": {state: seed(), change: update(reflector("r2", "10.0.0.2", "1.0.0.1"), reflector("r2", "10.0.0.2", "1.0.0.1", noAddress)),
				want: []want{{RuleReflectorAddress, "warn", "Node/r2", "metadata.annotations[projectcalico.org/IPv4Address]", "no valid BGP address"}}},
		})
	},
	RuleFilterNotFound: func(t *testing.T) {
		runRuleCases(t, RuleFilterNotFound, map[string]ruleCase{
			"the filter exists": {state: with(seed(), noTransit(), bgpPeer("tor", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"no-transit"}}))},
			"a typo": {example: true, state: with(seed(), noTransit(), bgpPeer("tor", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"no-transti"}})),
				want: []want{{RuleFilterNotFound, "warn", "BGPPeer.crd.projectcalico.org/tor", "spec.filters[0]", `names BGPFilter "no-transti", which does not exist: calico-node skips it and applies no filter in its place; did you mean "no-transit"?`}}},
			"admission: deleting a filter in use": {state: with(seed(), noTransit(), bgpPeer("tor", apiv3.BGPPeerSpec{PeerIP: "192.0.2.1", ASNumber: 65000, Filters: []string{"no-transit"}})),
				change: remove(noTransit()),
				want:   []want{{RuleFilterNotFound, "warn", "BGPFilter.crd.projectcalico.org/no-transit", "metadata.name", `BGPPeer tor: spec.filters[0] names BGPFilter "no-transit", which does not exist`}}},
		})
	},
	RuleSessionOneSided: func(t *testing.T) {
		manual := []*calico.Object{node("w1", "10.0.0.1"), node("w2", "10.0.0.2"),
			bgpPeer("w1-w2", apiv3.BGPPeerSpec{Node: "w1", PeerSelector: "kubernetes.io/hostname == 'w2'", ReversePeering: new(apiv3.ReversePeeringManual)}), mesh(false)}
		runRuleCases(t, RuleSessionOneSided, map[string]ruleCase{
			"both sides": {state: seed()},
			"reversePeering Manual alone": {example: true, state: manual,
				want: []want{{RuleSessionOneSided, "warn", "Node/w1", "", "w1 configures a BGP session (IPv4) to w2, which does not configure it back"}}},
			"reversePeering Manual with the other side": {state: append(manual, bgpPeer("w2-w1", apiv3.BGPPeerSpec{Node: "w2", PeerSelector: "kubernetes.io/hostname == 'w1'", ReversePeering: new(apiv3.ReversePeeringManual)}))},
			"peerIP with another AS": {state: []*calico.Object{node("w1", "10.0.0.1"), node("w2", "10.0.0.2"), bgpPeer("to-w2", apiv3.BGPPeerSpec{Node: "w1", PeerIP: "10.0.0.2", ASNumber: 65001}), mesh(false)},
				want: []want{{RuleSessionOneSided, "warn", "Node/w1", "", "w1 configures a BGP session (IPv4) to w2"}}},
			"same password on both ends": {state: with(seed(), withPassword(selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), "bgp"))},
			"passwords from different sources": {state: []*calico.Object{node("w1", "10.0.0.1"), node("w2", "10.0.0.2"),
				withPassword(bgpPeer("w1-w2", apiv3.BGPPeerSpec{Node: "w1", PeerSelector: "kubernetes.io/hostname == 'w2'", ReversePeering: new(apiv3.ReversePeeringManual)}), "one"),
				bgpPeer("w2-w1", apiv3.BGPPeerSpec{Node: "w2", PeerSelector: "kubernetes.io/hostname == 'w1'", ReversePeering: new(apiv3.ReversePeeringManual)}), mesh(false)},
				want: []want{{RuleSessionOneSided, "warn", "Node/w1", "", "w1 and w2 configure their BGP session (IPv4) with passwords from different sources (w1: secret one key password, from BGPPeer w1-w2; w2: none, from BGPPeer w2-w1)"},
					{RuleSessionOneSided, "warn", "Node/w2", "", "w2 and w1 configure their BGP session (IPv4) with passwords from different sources"}}},
		})
	},
}

// TestRules runs one test per rule of the catalogue.
func TestRules(t *testing.T) {
	for _, r := range Rules {
		test, ok := ruleTests[r.ID]
		if !ok {
			t.Errorf("rule %s has no test in ruleTests", r.ID)
			continue
		}
		t.Run(r.ID, test)
	}
	if len(ruleTests) != len(Rules) {
		t.Errorf("%d rule tests for %d rules", len(ruleTests), len(Rules))
	}
	checkExamples(t)
}
