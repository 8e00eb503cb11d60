//go:build e2e

package calicoapiserver

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/test/harness"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var appliedLine = regexp.MustCompile(`(?m)^step \d+/\d+ applied`)

// TestPlanApplyThroughCalicoAPIServer: 30 nodes in 3 zones with the mesh on, as the
// tigera-operator leaves a cluster; turning the mesh off through calico-apiserver is refused
// with rrguard's message and rule IDs; `rrguard plan --apply` then writes its BGPPeers and the
// mesh switch as projectcalico.org/v3 through calico-apiserver (the group the cluster
// serves), each allowed by both judgements, and ends with the mesh off and a clean audit.
func TestPlanApplyThroughCalicoAPIServer(t *testing.T) {
	bin, err := harness.Build(h.RootDir, "./cmd/rrguard", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, harness.ZoneNodes(30)); err != nil {
		t.Fatal(err)
	}
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"nodeToNodeMeshEnabled": true, "asNumber": int64(64512), "logSeverityScreen": "Info"},
	}}
	if err := h.Client.Create(ctx, cfg, client.FieldOwner("calico-install")); err != nil {
		t.Fatal(err)
	}
	meshOffIsRefused(t, cfg)

	mark := rec.mark()
	cmd := exec.CommandContext(ctx, bin, "plan", "--apply", "--pause", "300ms")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rrguard plan --apply: %v\n%s", err, out)
	}
	if n := len(appliedLine.FindAll(out, -1)); n != 12 || !strings.Contains(string(out), "all 12 steps applied; the cluster's audit: 0 deny, 0 warn") {
		t.Errorf("%d steps applied, want all 12 and a clean audit:\n%s", n, out)
	}
	t.Logf("rrguard plan --apply:\n%s", out)

	// Each BGP step of the plan judged twice (the projectcalico.org/v3 write, then
	// calico-apiserver's crd.projectcalico.org/v1 one), every review allowed.
	reviews := judgements(rec.since(mark)).validating()
	v3 := slices.DeleteFunc(slices.Clone(reviews), func(j judgement) bool { return j.Group != groupV3 })
	v1 := slices.DeleteFunc(slices.Clone(reviews), func(j judgement) bool { return j.Group != groupV1 })
	for _, j := range reviews {
		if !j.Allowed {
			t.Errorf("refused during the plan: %s", j)
		}
	}
	for _, j := range v1 {
		if j.User != h.CalicoAPIServer.ServiceAccount {
			t.Errorf("crd.projectcalico.org/v1 written by another than calico-apiserver: %s", j)
		}
	}
	if len(v3) == 0 || len(v1) != len(v3) {
		t.Errorf("%d projectcalico.org/v3 reviews and %d of calico-apiserver's crd.projectcalico.org/v1 writes, want as many, at least one: %s", len(v3), len(v1), judgements(reviews))
	}
	t.Logf("rrguard asked %d times during the plan: %d about projectcalico.org/v3, %d about calico-apiserver's crd.projectcalico.org/v1 writes", len(reviews), len(v3), len(v1))

	if err := h.Client.Get(ctx, client.ObjectKey{Name: "default"}, cfg); err != nil {
		t.Fatal(err)
	}
	if mesh, _, _ := unstructured.NestedBool(cfg.Object, "spec", "nodeToNodeMeshEnabled"); mesh {
		t.Error("the node-to-node mesh is still on after the plan")
	}
	peer := &unstructured.Unstructured{}
	peer.SetAPIVersion("projectcalico.org/v3")
	peer.SetKind("BGPPeer")
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard-zone-a"}, peer); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(peer.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool { return m.Manager == "rrguard-plan" }) {
		t.Errorf("rrguard-zone-a managed by %v, want rrguard-plan", peer.GetManagedFields())
	}
	cmd = exec.CommandContext(ctx, bin, "plan", "--apply")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "nothing to do") {
		t.Errorf("second plan --apply: %v\n%s", err, out)
	}
}

// meshOffIsRefused: a projectcalico.org/v3 BGPConfiguration that turns the mesh off before
// any reflector exists is refused through calico-apiserver with rrguard's message, rule IDs
// and field path, as on the CRDs.
func meshOffIsRefused(t *testing.T, cfg *unstructured.Unstructured) {
	t.Helper()
	off := cfg.DeepCopy()
	if err := unstructured.SetNestedField(off.Object, false, "spec", "nodeToNodeMeshEnabled"); err != nil {
		t.Fatal(err)
	}
	var status apierrors.APIStatus
	err := h.Client.Update(t.Context(), off, client.DryRunAll)
	if !errors.As(err, &status) {
		t.Fatalf("mesh off through calico-apiserver before any reflector: %v, want rrguard's refusal", err)
	}
	s := status.Status()
	const prefix = `admission webhook "bgp.validate.rrguard.io" denied the request: rrguard refused BGPConfiguration "default" (`
	if !strings.Contains(s.Message, prefix+validate.RuleMeshDisable) {
		t.Errorf("refusal %q, want rrguard's, naming %s", s.Message, validate.RuleMeshDisable)
	}
	var fields []string
	if s.Details != nil {
		for _, c := range s.Details.Causes {
			fields = append(fields, c.Field)
		}
	}
	if !slices.Contains(fields, "spec.nodeToNodeMeshEnabled") {
		t.Errorf("causes name fields %v, want spec.nodeToNodeMeshEnabled", fields)
	}
	t.Logf("mesh off through calico-apiserver: HTTP %d %s: %s", s.Code, s.Reason, s.Message)
}
