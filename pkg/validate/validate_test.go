package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// objs decodes YAML documents separated by "---".
func objs(t testing.TB, docs string) []*calico.Object {
	t.Helper()
	var out []*calico.Object
	for _, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var m map[string]interface{}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("%v in\n%s", err, d)
		}
		o, err := calico.Decode(&unstructured.Unstructured{Object: m})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func obj(t testing.TB, doc string) *calico.Object { return objs(t, doc)[0] }

func coreNode(name, ip string, extra ...string) string {
	ann := fmt.Sprintf("projectcalico.org/IPv4Address: %s/24", ip)
	labels := "kubernetes.io/hostname: " + name
	ready := "True"
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		switch {
		case k == "cid":
			ann += ", projectcalico.org/RouteReflectorClusterID: " + v
		case k == "asn":
			ann += fmt.Sprintf(", projectcalico.org/ASNumber: %q", v)
		case k == "ready":
			ready = v
		default:
			labels += fmt.Sprintf(", %s: %q", k, v)
		}
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {%s}, annotations: {%s}}\nstatus: {conditions: [{type: Ready, status: %q}]}\n---\n", name, labels, ann, ready)
}

func peer(name, nodeSel, peerSel string) string {
	return fmt.Sprintf("apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: %s}\nspec: {nodeSelector: %q, peerSelector: %q}\n---\n", name, nodeSel, peerSel)
}

func meshConfig(on bool, as int) string {
	return fmt.Sprintf("apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: %v, asNumber: %d}\n---\n", on, as)
}

// seedDocs is the seed's end state: two reflectors sharing 1.0.0.1, three clients, mesh off.
var seedDocs = coreNode("zyisy", "10.30.0.13", "cid=1.0.0.1", "route-reflector=true") +
	coreNode("uqwst", "10.30.0.14") + coreNode("volwl", "10.30.0.15") +
	coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true") + coreNode("qtwtv", "10.30.0.17") +
	peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)") +
	peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)") + meshConfig(false, 63400)

func rulesOf(fs []Finding, action Action) []string {
	var out []string
	for _, f := range fs {
		if action == "" || f.Action == action {
			out = append(out, f.Rule)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestAudit(t *testing.T) {
	cases := map[string]struct {
		docs     string
		cfg      Config
		wantDeny []string
		wantWarn []string
		mention  string // a phrase one of the messages must contain
	}{
		"seed end state is clean":         {docs: seedDocs},
		"mesh on, plain cluster is clean": {docs: coreNode("a", "10.0.0.1") + coreNode("b", "10.0.0.2")},
		"cluster ID not IPv4": {
			docs:     coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2"),
			wantDeny: []string{RuleClusterIDFormat}, mention: "not an IPv4 address"},
		"masked cluster ID": {
			docs:     coreNode("a", "10.0.0.1", "cid=244.0.0.1/32", "route-reflector=true") + coreNode("b", "10.0.0.2"),
			wantDeny: []string{RuleClusterIDFormat}, wantWarn: []string{RuleReflectorWithoutPeers}, mention: "is a CIDR"},
		"node ASN unparsable": {
			docs:     coreNode("a", "10.0.0.1", "asn=1.1.1") + coreNode("b", "10.0.0.2"),
			wantDeny: []string{RuleASNumber}, mention: "asdot"},
		"node ASN above int32 is fine (an annotation)": {
			docs: coreNode("a", "10.0.0.1", "asn=4200000000") + coreNode("b", "10.0.0.2", "asn=4200000000")},
		"BGPConfiguration ASN above int32": {
			docs:     coreNode("a", "10.0.0.1") + meshConfig(true, 4200000000),
			wantDeny: []string{RuleASNumber}, mention: "int32"},
		"node ASN asdot ok": {
			docs: coreNode("a", "10.0.0.1", "asn=1.10") + coreNode("b", "10.0.0.2", "asn=1.10")},
		"reserved AS in default": {
			docs:     coreNode("a", "10.0.0.1") + meshConfig(true, 65535),
			wantDeny: []string{RuleASNumber}, mention: "65535"},
		"selector does not parse": {
			docs:     seedDocs + peer("bad", "!has(route-reflector)", "has(route-reflector"),
			wantDeny: []string{RuleSelectorSyntax}, mention: "does not parse"},
		"selector typo": {
			docs:     seedDocs + peer("typo", "!has(route-reflector)", "has(router-reflector)"),
			wantWarn: []string{RuleSelectorMatchesNothing}, mention: `did you mean label "route-reflector"`},
		"peerIP and peerSelector together": {
			docs:     seedDocs + "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: both}\nspec: {peerIP: 10.0.0.9, peerSelector: all(), asNumber: 64000}\n",
			wantDeny: []string{RulePeerFields}, wantWarn: []string{RulePeerTargetsNonReflector}, mention: "PeerIP field must be empty"},
		"mesh setting outside default": {
			docs:     seedDocs + "apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: node.zyisy}\nspec: {nodeToNodeMeshEnabled: true}\n",
			wantDeny: []string{RulePeerFields}, mention: "only be set in the BGPConfiguration named default"},
		"mesh off, one reflector": {
			docs: coreNode("r", "10.0.0.1", "cid=1.0.0.1", "route-reflector=true") + coreNode("a", "10.0.0.2") + coreNode("b", "10.0.0.3") +
				peer("p", "!has(route-reflector)", "has(route-reflector)") + meshConfig(false, 64512),
			wantDeny: []string{RuleMeshDisable, RuleReflectorRedundancy}, mention: "only 1 route reflector"},
		"mesh off, no peers": {
			docs:     coreNode("a", "10.0.0.1") + coreNode("b", "10.0.0.2") + meshConfig(false, 64512),
			wantDeny: []string{RuleMeshDisable, RouteProp}, mention: "no BGP session"},
		"shared cluster ID, partial peering (#2735)": {
			docs: coreNode("r1", "10.0.0.1", "cid=1.0.0.1", "rr=a") + coreNode("r2", "10.0.0.2", "cid=1.0.0.1", "rr=b") +
				coreNode("c1", "10.0.0.3", "side=a") + coreNode("c2", "10.0.0.4", "side=b") +
				peer("a", "side == 'a'", "rr == 'a'") + peer("b", "side == 'b'", "rr == 'b'") + peer("rr", "has(rr)", "has(rr)") + meshConfig(false, 64512),
			cfg:      Config{MinReflectors: 1},
			wantDeny: []string{RuleClusterIDConsistency, RouteProp}, mention: "#2735"},
		"distinct cluster IDs, partial peering works": {
			docs: coreNode("r1", "10.0.0.1", "cid=1.0.0.1", "rr=a") + coreNode("r2", "10.0.0.2", "cid=1.0.0.2", "rr=b") +
				coreNode("c1", "10.0.0.3", "side=a") + coreNode("c2", "10.0.0.4", "side=b") +
				peer("a", "side == 'a'", "rr == 'a'") + peer("b", "side == 'b'", "rr == 'b'") + peer("rr", "has(rr)", "has(rr)") + meshConfig(false, 64512),
			cfg: Config{MinReflectors: 1}},
		"cluster ID policy unique": {
			docs:     seedDocs,
			cfg:      Config{ClusterIDPolicy: ClusterIDUnique},
			wantDeny: []string{RuleClusterIDConsistency}, mention: "clusterIDPolicy is unique"},
		"reflector in another AS": {
			docs: coreNode("zyisy", "10.30.0.13", "cid=1.0.0.1", "route-reflector=true", "asn=65000") +
				strings.SplitN(seedDocs, "---\n", 2)[1],
			wantDeny: []string{RuleASNumber, RuleReflectorRedundancy}, mention: "eBGP"},
		"labelled reflector without cluster ID": {
			docs:     coreNode("r", "10.0.0.1", "route-reflector=true") + coreNode("a", "10.0.0.2"),
			wantWarn: []string{RuleReflectorLabel}, mention: "reflects nothing"},
		"peer selects a labelled node without cluster ID, mesh off": {
			docs:     seedDocs + coreNode("fake", "10.30.0.20", "route-reflector=true"),
			wantWarn: []string{RulePeerTargetsNonReflector, RuleReflectorLabel}, mention: "selects fake, which has no"},
		"reflector NotReady: clients left with one": {
			docs:     strings.Replace(seedDocs, coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true"), coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true", "ready=False"), 1),
			wantDeny: []string{RuleMeshDisable, RuleReflectorRedundancy}, mention: "lost reflector: rxgks (NotReady)"},
		"rule turned off": {
			docs: coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2"),
			cfg:  Config{Rules: map[string]Action{RuleClusterIDFormat: Off}}},
		"enforcement audit records everything": {
			docs:     coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2") + meshConfig(false, 64512),
			cfg:      Config{Enforcement: EnforcementAudit},
			wantDeny: nil, wantWarn: nil, mention: "not an IPv4 address"},
		"rule downgraded to warn": {
			docs:     coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2"),
			cfg:      Config{Rules: map[string]Action{RuleClusterIDFormat: Warn}},
			wantWarn: []string{RuleClusterIDFormat}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := New(c.cfg)
			got := e.Audit(t.Context(), model.NewSnapshot(calico.NewState(objs(t, c.docs))))
			if d := rulesOf(got, Deny); fmt.Sprint(d) != fmt.Sprint(sorted(c.wantDeny)) {
				t.Errorf("deny rules %v, want %v\n%s", d, sorted(c.wantDeny), dump(got))
			}
			if w := rulesOf(got, Warn); fmt.Sprint(w) != fmt.Sprint(sorted(c.wantWarn)) {
				t.Errorf("warn rules %v, want %v\n%s", w, sorted(c.wantWarn), dump(got))
			}
			if c.mention != "" && !strings.Contains(dump(got), c.mention) {
				t.Errorf("no message mentions %q:\n%s", c.mention, dump(got))
			}
			for _, f := range got {
				if f.Object.Name == "" || f.Message == "" {
					t.Errorf("finding without object or message: %+v", f)
				}
			}
		})
	}
}

// RouteProp shortens the table above.
const RouteProp = RuleRoutePropagation

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s %s %s: %s\n", f.Action, f.Rule, f.Object, f.Field, f.Message)
	}
	return b.String()
}

func TestEvaluate(t *testing.T) {
	migrating := coreNode("zyisy", "10.30.0.13", "cid=1.0.0.1", "route-reflector=true") +
		coreNode("uqwst", "10.30.0.14") + coreNode("volwl", "10.30.0.15") + coreNode("rxgks", "10.30.0.16") + coreNode("qtwtv", "10.30.0.17")
	cases := map[string]struct {
		before   string
		op       model.Operation
		object   string // new object (CREATE/UPDATE)
		old      string // old object (UPDATE/DELETE)
		wantDeny []string
		wantWarn []string
	}{
		"unrelated change on a broken cluster is not blocked": {
			before: coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2") + meshConfig(false, 64512),
			op:     model.Update, object: coreNode("b", "10.0.0.2", "team=x"), old: coreNode("b", "10.0.0.2")},
		"unchanged bad field is not blocked": {
			before: coreNode("a", "10.0.0.1", "cid=300.34.3.1") + coreNode("b", "10.0.0.2"),
			op:     model.Update, object: coreNode("a", "10.0.0.1", "cid=300.34.3.1", "team=x"), old: coreNode("a", "10.0.0.1", "cid=300.34.3.1")},
		"new bad cluster ID is refused": {
			before: coreNode("a", "10.0.0.1") + coreNode("b", "10.0.0.2"),
			op:     model.Update, object: coreNode("a", "10.0.0.1", "cid=abcdef"), old: coreNode("a", "10.0.0.1"),
			wantDeny: []string{RuleClusterIDFormat}},
		"first reflector while the mesh is on: warning only": {
			before: coreNode("a", "10.0.0.1") + coreNode("b", "10.0.0.2") + coreNode("c", "10.0.0.3"),
			op:     model.Update, object: coreNode("a", "10.0.0.1", "cid=1.0.0.1", "route-reflector=true"), old: coreNode("a", "10.0.0.1"),
			wantWarn: []string{RuleReflectorWithoutPeers}},
		"mesh off judged whole: reflectors not peered with each other": {
			before: seedDocs[:strings.Index(seedDocs, "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: rr-to-rr-peer}")],
			op:     model.Create, object: meshConfig(false, 63400),
			wantDeny: []string{RouteProp}},
		"mesh off onto a working design": {
			before: strings.TrimSuffix(seedDocs, meshConfig(false, 63400)),
			op:     model.Create, object: meshConfig(false, 63400)},
		"deleting the default configuration turns the mesh on: allowed": {
			before: seedDocs, op: model.Delete, old: meshConfig(false, 63400)},
		"deleting the client peering is refused": {
			before: seedDocs, op: model.Delete, old: peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)"),
			wantDeny: []string{RouteProp, RuleReflectorRemoval}},
		"deleting a reflector node is refused": {
			before: seedDocs, op: model.Delete, old: coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true"),
			wantDeny: []string{RuleReflectorRedundancy, RuleReflectorRemoval}},
		"relabelling a reflector out of the peer selector is refused": {
			before: seedDocs, op: model.Update,
			object: coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1"),
			old:    coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true"),
			// rxgks still holds the shared ID but now peers only with zyisy, as a non-client
			// (same ID): routes still flow (BIRD keeps what a same-ID reflector sends), but
			// the clients are left with one reflector and the shared ID is partial (#2735).
			wantDeny: []string{RuleClusterIDConsistency, RuleReflectorRedundancy, RuleReflectorRemoval}},
		"a third reflector is welcome": {
			before: seedDocs, op: model.Update,
			object: coreNode("qtwtv", "10.30.0.17", "cid=1.0.0.1", "route-reflector=true"), old: coreNode("qtwtv", "10.30.0.17")},
		"deleting a node the state does not hold: nothing to judge": {
			before: seedDocs, op: model.Delete, old: coreNode("ghost", "10.30.0.99", "cid=1.0.0.1", "route-reflector=true")},
		"deleting a BGPPeer the state does not hold: nothing to judge": {
			before: seedDocs, op: model.Delete, old: peer("ghost", "all()", "has(route-reflector)")},
		"deleting a BGPConfiguration the state does not hold: nothing to judge": {
			before: seedDocs, op: model.Delete, old: strings.Replace(meshConfig(true, 63400), "name: default", "name: ghost", 1)},
		"a peer with a typo is a warning": {
			before: migrating, op: model.Create, object: peer("p", "!has(route-reflector)", "has(router-reflector)"),
			wantWarn: []string{RuleSelectorMatchesNothing}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := New(Config{})
			ch := model.Change{Operation: c.op}
			if c.object != "" {
				ch.Object = obj(t, c.object)
			}
			if c.old != "" {
				ch.Old = obj(t, c.old)
			}
			got := e.Evaluate(t.Context(), ch, model.NewSnapshot(calico.NewState(objs(t, c.before))))
			if d := rulesOf(got, Deny); fmt.Sprint(d) != fmt.Sprint(sorted(c.wantDeny)) {
				t.Errorf("deny rules %v, want %v\n%s", d, sorted(c.wantDeny), dump(got))
			}
			if w := rulesOf(got, Warn); fmt.Sprint(w) != fmt.Sprint(sorted(c.wantWarn)) {
				t.Errorf("warn rules %v, want %v\n%s", w, sorted(c.wantWarn), dump(got))
			}
			target := ch.Object
			if target == nil {
				target = ch.Old
			}
			for _, f := range got {
				if f.Object != refOf(target) {
					t.Errorf("finding about %s, want the changed object %s", f.Object, refOf(target))
				}
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	good := "minReflectors: 3\nreflectorLabel: rr\nclusterIDPolicy: unique\nrules: {selector-matches-nothing: deny, reflector-label: off}\n"
	c, err := ParseConfig([]byte(good), "rrguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.MinReflectors != 3 || c.ReflectorLabel != "rr" || c.ActionFor(RuleSelectorMatchesNothing) != Deny || c.ActionFor(RuleRoutePropagation) != Deny || c.ActionFor(RuleReflectorWithoutPeers) != Warn {
		t.Errorf("parsed %+v", c)
	}
	for name, bad := range map[string]struct{ doc, want string }{
		"unknown rule":   {"rules: {No_Such_Rule: deny}", "unknown rule"},
		"bad action":     {"rules: {as-number: block}", "deny, warn, audit or off"},
		"bad policy":     {"clusterIDPolicy: some", "any, shared or unique"},
		"unknown field":  {"minReflector: 2", "unknown field"},
		"negative count": {"minReflectors: -1", "at least 1"},
	} {
		if _, err := ParseConfig([]byte(bad.doc), "rrguard.yaml"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, bad.want)
		}
	}
}
