package validate

import (
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/policy/policytest"
)

func loadPolicies(t testing.TB, timeout time.Duration, files map[string]string) *policy.Set {
	t.Helper()
	set, err := policy.Load(PolicyOptions([]string{policytest.Dir(t, files)}, timeout))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// peerPolicy refuses BGPPeers named forbidden-*, warns on peers named legacy-*, and echoes
// what it was given, to check the input contract.
const peerPolicy = `package rrguard.policies["peer-names"]

import rego.v1

deny contains {"msg": sprintf("BGPPeer %s: names starting with forbidden- are reserved", [input.object.metadata.name]), "field": "metadata.name"} if {
	input.kind == "BGPPeer"
	startswith(input.object.metadata.name, "forbidden-")
}

warn contains "legacy peer name" if {
	input.kind == "BGPPeer"
	startswith(input.object.metadata.name, "legacy-")
}

warn contains sprintf("echo op=%s group=%s user=%s dryRun=%v findings=%v old=%v", [input.operation, input.group, input.userInfo.username, input.dryRun, [f.rule | some f in input.findings], object.get(input, ["oldObject", "spec", "peerSelector"], "-")]) if {
	input.object.metadata.name == "echo"
}
`

func seedState(t testing.TB, mesh string) *model.Snapshot {
	t.Helper()
	return model.NewSnapshot(calico.NewState(objs(t, coreNode("rr1", "10.0.0.1", "cid=1.0.0.1", "route-reflector=true", "topology.kubernetes.io/zone=a")+
		coreNode("rr2", "10.0.0.2", "cid=1.0.0.1", "route-reflector=true", "topology.kubernetes.io/zone=b")+
		coreNode("w1", "10.0.0.3", "topology.kubernetes.io/zone=a")+
		coreNode("w2", "10.0.0.4", "topology.kubernetes.io/zone=b", "asn=63400")+
		peer("to-rr", "!has(route-reflector)", "has(route-reflector)")+
		peer("rr-mesh", "has(route-reflector)", "has(route-reflector)")+
		"apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: "+mesh+", asNumber: 64512}\n")))
}

func TestPolicyFindingsInEvaluate(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	before := seedState(t, "false")
	create := func(name string) model.Change {
		return model.Change{Operation: model.Create, Object: obj(t, peer(name, "all()", "has(route-reflector)"))}
	}
	cases := map[string]struct {
		rules map[string]Action
		audit bool
		ch    model.Change
		want  []Finding
	}{
		"deny result denies": {ch: create("forbidden-1"), want: []Finding{{Rule: "peer-names", Action: Deny, Field: "metadata.name", Message: "BGPPeer forbidden-1: names starting with forbidden- are reserved"}}},
		"warn result warns":  {ch: create("legacy-1"), want: []Finding{{Rule: "peer-names", Action: Warn, Message: "legacy peer name"}}},
		"nothing to say":     {ch: create("fine")},
		"rules sets action":  {rules: map[string]Action{"peer-names": Audit}, ch: create("legacy-1"), want: []Finding{{Rule: "peer-names", Action: Audit, Message: "legacy peer name"}}},
		"off disables":       {rules: map[string]Action{"peer-names": Off}, ch: create("forbidden-1")},
		"enforcement audit":  {audit: true, ch: create("forbidden-1"), want: []Finding{{Rule: "peer-names", Action: Audit, Field: "metadata.name", Message: "BGPPeer forbidden-1: names starting with forbidden- are reserved"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Rules: c.rules}
			if c.audit {
				cfg.Enforcement = EnforcementAudit
			}
			got := New(cfg).WithPolicies(set).Evaluate(t.Context(), c.ch, before)
			var mine []Finding
			for _, f := range got {
				if f.Rule == "peer-names" {
					f.key = ""
					mine = append(mine, f)
				}
			}
			for i := range c.want {
				c.want[i].Object = ObjectRef{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: c.ch.Object.Name}
			}
			if len(mine) != len(c.want) {
				t.Fatalf("got %+v, want %+v", mine, c.want)
			}
			for i := range mine {
				if mine[i] != c.want[i] {
					t.Errorf("got %+v, want %+v", mine[i], c.want[i])
				}
			}
		})
	}
}

func TestPolicyInput(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	before := seedState(t, "false")
	old := obj(t, peer("echo", "all()", "has(route-reflector)"))
	ch := model.Change{Operation: model.Update, Object: obj(t, peer("echo", "all()", "has(router-reflector)")), Old: old,
		User: &model.UserInfo{Username: "alice", Groups: []string{"netops"}}, DryRun: true}
	got := New(Config{}).WithPolicies(set).Evaluate(t.Context(), ch, before)
	want := "echo op=UPDATE group=crd.projectcalico.org user=alice dryRun=true findings=[\"selector-matches-nothing\"] old=has(route-reflector)"
	for _, f := range got {
		if f.Rule == "peer-names" {
			if f.Message != want {
				t.Errorf("input seen as\n%s\nwant\n%s", f.Message, want)
			}
			return
		}
	}
	t.Errorf("no echo: %+v", got)
}

// clusterPolicy checks data.rrguard.cluster and the rrguard.lib helpers from Rego.
const clusterPolicy = `package rrguard.policies["cluster-data"]

import data.rrguard.lib
import rego.v1

c := data.rrguard.cluster

checks := {
	"nodes": count(c.nodes) == 4,
	"merged labels": c.nodes.rr1.labels["route-reflector"] == "true",
	"node fields": c.nodes.w2 == {"name": "w2", "labels": c.nodes.w2.labels, "clusterID": "", "asNumber": 63400, "ipv4Address": "10.0.0.4", "ipv6Address": "", "zone": "b", "ready": true, "reflector": false, "class": c.nodes.w2.class},
	"reflectors": c.reflectors == ["rr1", "rr2"],
	"zones": c.zones == {"a": {"nodes": 2, "reflectors": ["rr1"]}, "b": {"nodes": 2, "reflectors": ["rr2"]}},
	"config": c.config == {"meshEnabled": false, "asNumber": 64512},
	"peers": c.peers["to-rr"].spec.peerSelector == "has(route-reflector)",
	"configurations": c.configurations["default"].spec.nodeToNodeMeshEnabled == false,
	"client session": lib.session("w1", "rr2"),
	"reflector session": lib.session("rr1", "rr2"),
	"no client mesh": no_client_mesh,
	"reflectors of": lib.reflectors_of("w1") == {"rr1", "rr2"},
	"ready reflectors": lib.ready_reflectors("a") == {"rr1"},
}

default no_client_mesh := false

no_client_mesh if not lib.session("w1", "w2")

deny contains sprintf("check %s failed", [name]) if {
	some name, ok in checks
	not ok
}

deny contains sprintf("check %s undefined", [name]) if {
	some name in {"nodes", "merged labels", "node fields", "reflectors", "zones", "config", "peers", "configurations", "client session", "reflector session", "no client mesh", "reflectors of", "ready reflectors"}
	not name in object.keys(checks)
}
`

func TestPolicyClusterData(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"cluster.rego": clusterPolicy})
	s := seedState(t, "false")
	for _, f := range New(Config{}).WithPolicies(set).Audit(t.Context(), s) {
		if f.Rule == "cluster-data" {
			t.Errorf("%s on %s", f.Message, f.Object)
		}
	}
}

func TestPolicyAudit(t *testing.T) {
	set, err := policy.Load(PolicyOptions(nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	s := seedState(t, "false")
	e := New(Config{Rules: map[string]Action{"private-asn": Warn}}).WithPolicies(set)
	var got []Finding
	for _, f := range e.Audit(t.Context(), s) {
		if f.Rule == "private-asn" {
			got = append(got, f)
		}
	}
	// w2 speaks AS 63400 (a core Node: the field is its annotation).
	if len(got) != 1 || got[0].Object.Name != "w2" || got[0].Action != Warn || got[0].Field != "metadata.annotations["+calico.AnnotationASNumber+"]" {
		t.Errorf("private-asn audit: %+v", got)
	}
	for _, f := range New(Config{}).WithPolicies(set).Audit(t.Context(), s) {
		if set.Policy(f.Rule) != nil {
			t.Errorf("shipped policies are off by default, got %+v", f)
		}
	}
}

func TestPolicyErrorsAreFindings(t *testing.T) {
	set := loadPolicies(t, 20*time.Millisecond, map[string]string{
		"slow.rego": `package rrguard.policies.slow

import rego.v1

deny contains "never" if {
	some a in numbers.range(1, 5000)
	some b in numbers.range(1, 5000)
	a * b < 0
}
`,
		"bad.rego": `package rrguard.policies.bad

import rego.v1

deny contains 42 if true
`,
	})
	s := seedState(t, "false")
	ch := model.Change{Operation: model.Create, Object: obj(t, peer("p", "all()", "has(route-reflector)"))}
	for name, c := range map[string]struct {
		rules  map[string]Action
		action Action
	}{"deny by default": {nil, Deny}, "configured action": {map[string]Action{"slow": Warn, "bad": Warn}, Warn}} {
		t.Run(name, func(t *testing.T) {
			got := map[string]Finding{}
			for _, f := range New(Config{Rules: c.rules}).WithPolicies(set).Evaluate(t.Context(), ch, s) {
				got[f.Rule] = f
			}
			if f := got["slow"]; f.Action != c.action || !strings.Contains(f.Message, "did not finish within 20ms") || !strings.Contains(f.Message, "policy error") {
				t.Errorf("slow: %+v", f)
			}
			if f := got["bad"]; f.Action != c.action || !strings.Contains(f.Message, "must be a string") {
				t.Errorf("bad: %+v", f)
			}
		})
	}
}

func TestPolicyBindingIsPerSnapshot(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	e := New(Config{}).WithPolicies(set)
	s1 := seedState(t, "false")
	b1 := e.bindPolicies(s1)
	if e.bindPolicies(s1) != b1 {
		t.Error("the same snapshot was bound twice")
	}
	if e.bindPolicies(seedState(t, "false")) == b1 {
		t.Error("a new snapshot reused the old binding")
	}
	// Nothing enabled: nothing is bound, no data built.
	if b := New(Config{Rules: map[string]Action{"peer-names": Off}}).WithPolicies(set).bindPolicies(s1); len(b.Policies()) != 0 {
		t.Errorf("bound %d policies", len(b.Policies()))
	}
}

func TestUnknownRules(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	cfg, err := ParseConfig([]byte("rules: {peer-names: warn, private-asn: deny, as-number: warn, no-such-rule: deny}"), "rrguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := UnknownRules(cfg, set); len(got) != 1 || got[0] != "no-such-rule" {
		t.Errorf("unknown %v", got)
	}
	if got := UnknownRules(cfg, nil); len(got) != 3 {
		t.Errorf("without policies, unknown %v", got)
	}
}

func TestPolicyNameMayNotBeABuiltinRule(t *testing.T) {
	_, err := policy.Load(PolicyOptions([]string{policytest.Dir(t, map[string]string{"x.rego": "package rrguard.policies[\"as-number\"]\n\nimport rego.v1\n\ndeny contains \"x\" if false\n"})}, 0))
	if err == nil || !strings.Contains(err.Error(), "x.rego:1") || !strings.Contains(err.Error(), "built-in rule ID") {
		t.Errorf("err %v", err)
	}
}
