package validate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// reflectorsLabelled is the seed cluster in the middle of its migration: both reflectors hold
// cluster ID 1.0.0.1 and the label, no BGPPeer exists yet, the mesh is on.
var reflectorsLabelled = coreNode("zyisy", "10.30.0.13", "cid=1.0.0.1", "route-reflector=true") +
	coreNode("uqwst", "10.30.0.14") + coreNode("volwl", "10.30.0.15") +
	coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1", "route-reflector=true") + coreNode("qtwtv", "10.30.0.17")

const (
	clientPeering    = `nodeSelector: "!has(route-reflector)", peerSelector: "has(route-reflector)"`
	noSessionClients = `qtwtv, uqwst, volwl would exchange no IPv4 pod routes with any other node: with the mesh off qtwtv, uqwst, volwl have no BGP session: create a BGPPeer that selects them, e.g. ` + clientPeering
	noSessionRRs     = `rxgks, zyisy would exchange no IPv4 pod routes with any other node: with the mesh off rxgks, zyisy have no BGP session: create a BGPPeer that selects them, e.g. ` + clientPeering
	typoMessage      = `BGPPeer node-peer-to-rr: spec.peerSelector "has(router-reflector)" selects no node with a BGP address; did you mean label "route-reflector" instead of "router-reflector"?`
)

// applied returns the changes of docs (each an object; old: the state's version, if any) and
// the snapshot after all of them.
func applied(t *testing.T, before *model.Snapshot, docs string) ([]model.Change, *model.Snapshot) {
	t.Helper()
	var changes []model.Change
	state := before.State
	for _, o := range objs(t, docs) {
		ch := model.Change{Operation: model.Create, Object: o}
		if old := stateObject(before.State, o.Kind, o.Name); old != nil {
			ch.Operation, ch.Old = model.Update, old
		}
		changes = append(changes, ch)
		state = model.Apply(state, ch)
	}
	return changes, model.NewSnapshot(state)
}

// stateObject returns the node, BGPPeer or BGPConfiguration of that kind and name in s.
func stateObject(s *calico.State, kind, name string) *calico.Object {
	for _, o := range stateObjects(&model.Snapshot{State: s}) {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	return nil
}

// public keeps what a user sees of findings.
func public(fs []Finding) []Finding {
	out := []Finding{}
	for _, f := range fs {
		out = append(out, Finding{Rule: f.Rule, Action: f.Action, Object: f.Object, Field: f.Field, Message: f.Message})
	}
	return out
}

func TestEvaluateAll(t *testing.T) {
	bgpConfig := ObjectRef{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default"}
	clientPeer := ObjectRef{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "node-peer-to-rr"}
	cases := map[string]struct {
		before, changes string
		want            []Finding
	}{
		"the peers and the mesh switch, together, are allowed": {
			before: reflectorsLabelled,
			changes: peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)") +
				peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)") + meshConfig(false, 63400),
		},
		"the mesh switch alone is refused, as admission refuses it": {
			before: reflectorsLabelled, changes: meshConfig(false, 63400),
			want: []Finding{
				{Rule: RuleRoutePropagation, Action: Deny, Object: bgpConfig, Field: meshPath, Message: noSessionClients},
				{Rule: RuleRoutePropagation, Action: Deny, Object: bgpConfig, Field: meshPath, Message: noSessionRRs},
			},
		},
		"the peers alone, mesh on: nothing introduced": {
			before: reflectorsLabelled,
			changes: peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)") +
				peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)"),
		},
		"mesh off with a typo: what breaks is held against the mesh switch": {
			before: reflectorsLabelled,
			changes: peer("node-peer-to-rr", "!has(route-reflector)", "has(router-reflector)") +
				peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)") + meshConfig(false, 63400),
			want: []Finding{
				{Rule: RuleSelectorMatchesNothing, Action: Warn, Object: clientPeer, Field: peerSelectorPath, Message: typoMessage},
				{Rule: RuleRoutePropagation, Action: Deny, Object: bgpConfig, Field: meshPath, Message: noSessionClients},
			},
		},
		"a break no one change of several is to blame for keeps the object it names": {
			before: seedDocs,
			changes: peer("node-peer-to-rr", "!has(route-reflector)", "has(router-reflector)") +
				peer("extra", "has(route-reflector)", "has(route-reflector)"),
			want: []Finding{
				{Rule: RuleSelectorMatchesNothing, Action: Warn, Object: clientPeer, Field: peerSelectorPath, Message: typoMessage},
				{Rule: RuleRoutePropagation, Action: Deny, Object: nodeRef("qtwtv"), Message: noSessionClients},
				{Rule: RuleReflectorRemoval, Action: Deny, Object: clientPeer, Field: "spec", Message: "changing BGPPeer node-peer-to-rr breaks the route-reflector topology (see the other findings): when a reflector or its peering must go, first add and peer its replacement (at least 2 reflectors per client)"},
			},
		},
		"objects the cluster holds as written: nothing to judge": {before: seedDocs},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := model.NewSnapshot(calico.NewState(objs(t, c.before)))
			changes, after := applied(t, before, c.changes)
			got := public(New(Config{}).EvaluateAll(t.Context(), changes, before, after))
			if c.want == nil {
				c.want = []Finding{}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", dump(got), dump(c.want))
			}
		})
	}
}

// TestEvaluateAllOfOne: one change is judged as admission judges it, finding for finding,
// over the changes of TestEvaluate's kinds.
func TestEvaluateAllOfOne(t *testing.T) {
	for i, c := range []struct{ before, object string }{
		{reflectorsLabelled, meshConfig(false, 63400)},
		{seedDocs, peer("node-peer-to-rr", "!has(route-reflector)", "has(router-reflector)")},
		{seedDocs, peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector")},
		{seedDocs, coreNode("rxgks", "10.30.0.16", "cid=1.0.0.1")},
		{seedDocs, coreNode("qtwtv", "10.30.0.17", "cid=1.0.0.1", "route-reflector=true")},
		{seedDocs, coreNode("zyisy", "10.30.0.13", "cid=1.0.0.256", "route-reflector=true")},
		{seedDocs, meshConfig(false, 23456)},
		{reflectorsLabelled, peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)")},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			before := model.NewSnapshot(calico.NewState(objs(t, c.before)))
			changes, after := applied(t, before, c.object)
			e := New(Config{})
			got, want := public(e.EvaluateAll(t.Context(), changes, before, after)), public(e.Evaluate(t.Context(), changes[0], before))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("EvaluateAll:\n%s\nEvaluate:\n%s", dump(got), dump(want))
			}
			if strings.Contains(c.object, "23456") && len(want) == 0 {
				t.Error("a reserved AS number is not refused: the case proves nothing")
			}
		})
	}
}

// TestEvaluateAllPolicies: each changed object meets the policies once, with the findings
// about it as input.findings.
func TestEvaluateAllPolicies(t *testing.T) {
	set := loadPolicies(t, 0, map[string]string{"peers.rego": peerPolicy})
	before := seedState(t, "false")
	changes, after := applied(t, before, peer("forbidden-1", "all()", "has(route-reflector)")+peer("echo", "all()", "has(route-reflector")+peer("fine", "all()", "has(route-reflector)"))
	for i := range changes {
		changes[i].User = &model.UserInfo{Username: "ci"}
	}
	got := public(New(Config{}).WithPolicies(set).EvaluateAll(t.Context(), changes, before, after))
	echo := ObjectRef{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "echo"}
	want := []Finding{
		{Rule: RuleSelectorSyntax, Action: Deny, Object: echo, Field: peerSelectorPath},
		{Rule: "peer-names", Action: Deny, Object: ObjectRef{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "forbidden-1"}, Field: "metadata.name", Message: "BGPPeer forbidden-1: names starting with forbidden- are reserved"},
		{Rule: "peer-names", Action: Warn, Object: echo, Message: "echo op=CREATE group=crd.projectcalico.org user=ci dryRun=false findings=[\"selector-syntax\"] old=-"},
	}
	if len(got) != len(want) {
		t.Fatalf("findings:\n%s\nwant:\n%s", dump(got), dump(want))
	}
	for i := range want {
		if got[i].Rule != want[i].Rule || got[i].Action != want[i].Action || got[i].Object != want[i].Object || got[i].Field != want[i].Field ||
			(want[i].Message != "" && got[i].Message != want[i].Message) {
			t.Errorf("finding %d: %s, want %s", i, dump(got[i:i+1]), dump(want[i:i+1]))
		}
	}
}
