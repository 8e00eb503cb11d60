//go:build e2e

package plan

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/test/harness"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// liveState reads the cluster as rrguard audit does.
func liveState(t *testing.T) *calico.State {
	t.Helper()
	objs, _, err := cluster.LoadLiveObjects(t.Context(), h.Client)
	if err != nil {
		t.Fatal(err)
	}
	return calico.NewState(objs)
}

// checkDesign fails unless the live cluster has the mesh off, at least 2 reflectors in each
// zone and no finding at all.
func checkDesign(t *testing.T) {
	t.Helper()
	state := liveState(t)
	if state.Mesh() {
		t.Error("the node-to-node mesh is still on")
	}
	perZone := map[string][]string{}
	for _, name := range state.NodeNames() {
		n := state.Node(name)
		if n.ClusterID != "" && (n.Ready == nil || *n.Ready) {
			z := n.Labels()["topology.kubernetes.io/zone"]
			perZone[z] = append(perZone[z], name)
		}
	}
	for _, z := range []string{"a", "b", "c"} {
		if len(perZone[z]) < 2 {
			t.Errorf("zone %s has Ready reflectors %v, want at least 2", z, perZone[z])
		}
	}
	for _, f := range validate.New(validate.DefaultConfig()).Audit(t.Context(), model.NewSnapshot(state)) {
		t.Errorf("audit: [%s] %s: %s", f.Action, f.Rule, f.Message)
	}
}

var appliedLine = regexp.MustCompile(`(?m)^step \d+/\d+ applied`)

// TestApplyFromMesh is the proof: 30 nodes in 3 zones with the mesh on, rrguard plan
// --apply through the registered webhook with zero refusals, the mesh off at the end, at least
// 2 reflectors per zone and a clean audit.
func TestApplyFromMesh(t *testing.T) {
	if err := h.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(t.Context(), harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	// An existing default BGPConfiguration, written by someone else.
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"nodeToNodeMeshEnabled": true, "asNumber": 64512, "logSeverityScreen": "Info"},
	}}
	if err := h.Client.Create(t.Context(), cfg, client.FieldOwner("calico-install")); err != nil {
		t.Fatal(err)
	}
	// The webhook is live: switching the mesh off now is refused.
	off := cfg.DeepCopy()
	if err := unstructured.SetNestedField(off.Object, false, "spec", "nodeToNodeMeshEnabled"); err != nil {
		t.Fatal(err)
	}
	if err := h.Client.Update(t.Context(), off, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "mesh-disable-needs-reflectors") {
		t.Fatalf("mesh off before any reflector: %v, want rrguard's refusal", err)
	}
	out, code := rrguard(t, "plan", "--apply", "--pause", "300ms")
	if code != 0 {
		t.Fatalf("plan --apply: exit %d\n%s", code, out)
	}
	if n := len(appliedLine.FindAllString(out, -1)); n != 12 {
		t.Errorf("%d steps applied, want 12:\n%s", n, out)
	}
	if !strings.Contains(out, "all 12 steps applied; the cluster's audit: 0 deny, 0 warn") {
		t.Errorf("output:\n%s", out)
	}
	t.Log(out)
	checkDesign(t)
	// Written with rrguard's field manager, through the group the cluster serves.
	peer := &unstructured.Unstructured{}
	peer.SetAPIVersion("projectcalico.org/v3")
	peer.SetKind("BGPPeer")
	if err := h.Client.Get(t.Context(), client.ObjectKey{Name: "rrguard-zone-a"}, peer); err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(peer.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool { return m.Manager == "rrguard-plan" }); i < 0 {
		t.Errorf("rrguard-zone-a managed by %v, want rrguard-plan", peer.GetManagedFields())
	}
	// The plan changed the mesh switch of the configuration (a patch: the installer owns the
	// field), and no field it found there.
	if err := h.Client.Get(t.Context(), client.ObjectKey{Name: "default"}, cfg); err != nil {
		t.Fatal(err)
	}
	for _, m := range cfg.GetManagedFields() {
		if m.Manager != "rrguard-plan" {
			continue
		}
		owned := ""
		if m.FieldsV1 != nil {
			owned = m.FieldsV1.GetRawString()
		}
		if !strings.Contains(owned, "f:nodeToNodeMeshEnabled") || strings.Contains(owned, "f:asNumber") {
			t.Errorf("rrguard-plan owns %s of the default BGPConfiguration, want only spec.nodeToNodeMeshEnabled", owned)
		}
	}
	if as, _, _ := unstructured.NestedInt64(cfg.Object, "spec", "asNumber"); as != 64512 {
		t.Errorf("asNumber %d after the plan", as)
	}
	// Again: nothing left to do.
	if out, code := rrguard(t, "plan", "--apply"); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second plan --apply: exit %d\n%s", code, out)
	}
}

// TestApplyStopsAtConflictAndResumes: a user's own edit of a field the plan would write is a
// server-side apply conflict; the plan stops there (never forced), and once the user gives the
// field up, running it again finishes from where it stopped.
func TestApplyStopsAtConflictAndResumes(t *testing.T) {
	if err := h.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(t.Context(), harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	mine := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer", "metadata": map[string]any{"name": "rrguard-zone-b"},
		"spec": map[string]any{"nodeSelector": "topology.kubernetes.io/zone == 'b'", "peerSelector": "kubernetes.io/hostname == 'node-01'"},
	}}
	if err := h.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(mine), client.FieldOwner("alice")); err != nil {
		t.Fatal(err)
	}
	out, code := rrguard(t, "plan", "--apply", "--pause", "100ms")
	if code != 1 || !strings.Contains(out, "conflicts with another field manager") || !strings.Contains(out, "rrguard-zone-b") {
		t.Fatalf("plan --apply with alice's peer: exit %d\n%s", code, out)
	}
	done := len(appliedLine.FindAllString(out, -1))
	if err := h.Client.Delete(t.Context(), mine); err != nil {
		t.Fatal(err)
	}
	out, code = rrguard(t, "plan", "--apply", "--pause", "100ms")
	if code != 0 {
		t.Fatalf("resumed plan --apply: exit %d\n%s", code, out)
	}
	if n := len(appliedLine.FindAllString(out, -1)); done+n != 12 {
		t.Errorf("%d steps before the conflict and %d after, want 12 in all:\n%s", done, n, out)
	}
	checkDesign(t)
}
