package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rrguard/rrguard/pkg/calico"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServedGroup returns the API group the cluster serves Calico's BGPPeers in:
// projectcalico.org (native v3 CRDs or Calico's API server) when served, else
// crd.projectcalico.org (the Kubernetes datastore's CRDs, which calicoctl writes).
func ServedGroup(c client.Client) (string, error) {
	for _, g := range []string{calico.GroupV3, calico.GroupCRD} {
		_, err := c.RESTMapper().RESTMapping(schema.GroupKind{Group: g, Kind: calico.KindBGPPeer})
		switch {
		case err == nil:
			return g, nil
		case !meta.IsNoMatchError(err):
			return "", fmt.Errorf("find the BGPPeer API: %w", err)
		}
	}
	return "", errors.New("the cluster serves no BGPPeer API (neither projectcalico.org nor crd.projectcalico.org): is Calico installed?")
}

// StepError is a step the API server did not take: refused by an admission webhook, in
// conflict with another field manager, or failed otherwise.
type StepError struct {
	Step *Step
	Err  error
}

func (e *StepError) Error() string {
	what := "failed"
	switch {
	case apierrors.IsConflict(e.Err):
		what = "conflicts with another field manager (not forced: rrguard never takes a field from a user's edit)"
	case apierrors.IsForbidden(e.Err):
		what = "is not permitted (RBAC)"
	case apierrors.IsInvalid(e.Err), apierrors.IsBadRequest(e.Err):
		what = "was refused"
	}
	return fmt.Sprintf("step %d (%s) %s: %v", e.Step.Number, e.Step.Summary, what, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ApplyStep writes one step: a server-side apply of its object with rrguard's field manager
// (never forced), a merge patch that removes a node's reflector label and cluster ID, or one
// that switches the mesh.
func ApplyStep(ctx context.Context, c client.Client, s *Step, fieldManager string) error {
	var err error
	switch {
	case s.Operation == OpApply && s.Kind == calico.KindBGPConfiguration:
		err = switchMesh(ctx, c, s, fieldManager)
	case s.Operation == OpApply:
		u := &unstructured.Unstructured{Object: s.Object}
		err = c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager))
	case s.Operation == OpRemove:
		labels, annotations := map[string]any{}, map[string]any{}
		for _, l := range s.RemoveLabels {
			labels[l] = nil
		}
		for _, a := range s.RemoveAnnotations {
			annotations[a] = nil
		}
		for a, v := range s.SetAnnotations {
			annotations[a] = v
		}
		var patch []byte
		patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
		if err == nil {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind(calico.KindNode)
			u.SetName(s.Name)
			err = c.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(fieldManager))
		}
	default:
		err = fmt.Errorf("unknown operation %q", s.Operation)
	}
	if err != nil {
		return &StepError{Step: s, Err: err}
	}
	return nil
}

// switchMesh sets nodeToNodeMeshEnabled of the default BGPConfiguration, and nothing else: a
// merge patch of that one field, as `calicoctl patch` does, since the field usually belongs to
// whoever installed Calico (a server-side apply would conflict with it every time). The step's
// manifest is the whole configuration, for calicoctl apply, which replaces a spec. Without a
// default configuration, one is created holding only that field.
func switchMesh(ctx context.Context, c client.Client, s *Step, fieldManager string) error {
	spec, _ := s.Object["spec"].(map[string]any)
	mesh := map[string]any{"nodeToNodeMeshEnabled": spec["nodeToNodeMeshEnabled"]}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": s.Object["apiVersion"], "kind": s.Kind, "metadata": map[string]any{"name": s.Name}}}
	patch, err := json.Marshal(map[string]any{"spec": mesh})
	if err != nil {
		return err
	}
	err = c.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(fieldManager))
	if !apierrors.IsNotFound(err) {
		return err
	}
	u.Object["spec"] = mesh
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager))
}
