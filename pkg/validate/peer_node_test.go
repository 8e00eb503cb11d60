package validate

import (
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

func TestNodeScopedPeerForMissingNode(t *testing.T) {
	docs := seedDocs + "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {node: zyisi, peerIP: 10.30.0.254, asNumber: 65001}\n"
	got := New(Config{}).Audit(t.Context(), model.NewSnapshot(calico.NewState(objs(t, docs))))
	found := false
	for _, f := range got {
		if f.Rule == RuleSelectorMatchesNothing && f.Field == "spec.node" && strings.Contains(f.Message, `"zyisi"`) && f.Action == Warn {
			found = true
		}
	}
	if !found {
		t.Errorf("a peer scoped to a node that does not exist is not reported:\n%s", dump(got))
	}
	clean := strings.Replace(docs, "node: zyisi", "node: zyisy", 1)
	for _, f := range New(Config{}).Audit(t.Context(), model.NewSnapshot(calico.NewState(objs(t, clean)))) {
		if f.Field == "spec.node" {
			t.Errorf("reported for an existing node: %+v", f)
		}
	}
}
