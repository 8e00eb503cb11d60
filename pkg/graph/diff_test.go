package graph_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
)

// diffOf is the diff of a change to the seed.
func diffOf(t *testing.T, ch model.Change) *graph.Diff {
	t.Helper()
	before := load(t, "../../examples/seed")
	after := model.NewSnapshot(model.Apply(before.State, ch))
	g, err := graph.Compare(before.Analysis, after.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g.Diff()
}

// TestDiffOfPeerDeletion: deleting the client peering of the seed removes the six sessions
// between the clients and the reflectors, and 18 ordered pairs of nodes stop learning each
// other's routes; the reflectors' own session stays, so it is not in the diff.
func TestDiffOfPeerDeletion(t *testing.T) {
	d := diffOf(t, model.Change{Operation: model.Delete, Old: &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "node-peer-to-rr"}})
	var table bytes.Buffer
	if err := d.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	const want = `before: 5 nodes, 2 reflectors, mesh off, AS 63400
after:  5 nodes, 2 reflectors, mesh off, AS 63400

SESSIONS   BETWEEN  AND    FAMILIES  KIND       FROM
- removed  qtwtv    rxgks  IPv4      rr-client  node-peer-to-rr
- removed  qtwtv    zyisy  IPv4      rr-client  node-peer-to-rr
- removed  rxgks    uqwst  IPv4      rr-client  node-peer-to-rr
- removed  rxgks    volwl  IPv4      rr-client  node-peer-to-rr
- removed  uqwst    zyisy  IPv4      rr-client  node-peer-to-rr
- removed  volwl    zyisy  IPv4      rr-client  node-peer-to-rr

ROUTES  LEARNER  FAMILIES  ROUTES OF
- lost  qtwtv    IPv4      rxgks, uqwst, volwl, zyisy
- lost  rxgks    IPv4      qtwtv, uqwst, volwl
- lost  uqwst    IPv4      qtwtv, rxgks, volwl, zyisy
- lost  volwl    IPv4      qtwtv, rxgks, uqwst, zyisy
- lost  zyisy    IPv4      qtwtv, uqwst, volwl

sessions: 0 added, 6 removed; routes: 18 lost, 0 regained (pairs of learner and origin)
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}

	var js bytes.Buffer
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Before, After                  string
		SessionsAdded, SessionsRemoved []graph.Session
		RoutesLost, RoutesRegained     []graph.Missing
		Boxes                          []graph.Box
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js.String())
	}
	if doc.SessionsAdded == nil || len(doc.SessionsRemoved) != 6 || len(doc.RoutesLost) != 18 || doc.RoutesRegained == nil || len(doc.Boxes) != 5 {
		t.Errorf("JSON: %d sessions added, %d removed, %d routes lost, %d regained, %d boxes; want [] 6 18 [] 5:\n%s",
			len(doc.SessionsAdded), len(doc.SessionsRemoved), len(doc.RoutesLost), len(doc.RoutesRegained), len(doc.Boxes), js.String())
	}
	ids := map[string]bool{}
	for _, b := range doc.Boxes {
		ids[b.ID] = len(b.Members) == 1
	}
	for _, s := range doc.SessionsRemoved {
		if !ids[s.From] || !ids[s.To] || s.Change != graph.Removed {
			t.Errorf("session %+v names a box the diff does not list, or is not marked removed", s)
		}
	}
}

// TestDiffOfMeshOn: turning the mesh back on adds a session between every pair of nodes but
// the two reflectors (they hold a cluster ID, so they stay out of the mesh) and loses no route.
func TestDiffOfMeshOn(t *testing.T) {
	d := diffOf(t, model.Change{Operation: model.Delete, Old: &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default"}})
	mesh := 0
	for _, s := range d.SessionsAdded {
		if s.Kind == graph.KindMesh {
			mesh++
		}
	}
	if mesh != 3 || len(d.RoutesLost) != 0 || d.Empty() {
		t.Errorf("%d mesh sessions added (want 3, among the clients), %d routes lost", mesh, len(d.RoutesLost))
	}
}

// TestDiffOfNothing: a change that touches no session says so.
func TestDiffOfNothing(t *testing.T) {
	d := diffOf(t, model.Change{Operation: model.Create, Object: &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "node-peer-to-rr",
		Peer: load(t, "../../examples/seed").State.Peer("node-peer-to-rr").BGPPeer}})
	var table bytes.Buffer
	if err := d.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !d.Empty() || !bytes.Contains(table.Bytes(), []byte("no BGP session and no route")) {
		t.Errorf("diff of no change:\n%s", table.String())
	}
}
