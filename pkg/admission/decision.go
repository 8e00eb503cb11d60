// Package admission is rrguard's admission decision: it decodes an AdmissionReview, mutates
// (the reflector label), evaluates the change against the cluster state and renders the
// response. The in-cluster webhook (pkg/webhook) and `rrguard review` both answer through it,
// so both give the same answer; it links no server, informer or metric.
package admission

import (
	"context"
	"errors"
	"fmt"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/mutate"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says which of the API server's webhook passes a decision plays.
type Mode int

const (
	// MutateThenValidate is both passes in the API server's order: the mutation, then the
	// validation of the mutated object (`rrguard review`).
	MutateThenValidate Mode = iota
	// Mutating is the mutating webhook: the reflector-label patch, never a denial.
	Mutating
	// Validating is the validating webhook: findings, no patch.
	Validating
)

func (m Mode) mutates() bool   { return m != Validating }
func (m Mode) validates() bool { return m != Mutating }

// Reviewer answers admission requests.
type Reviewer struct {
	Engine *validate.Engine
}

// Decision is the outcome of one review, before it is put into an AdmissionResponse.
type Decision struct {
	Findings []validate.Finding
	Patch    []mutate.Operation
	// Change is what was judged: the request's objects, the new one as mutated (zero for a
	// request of a kind rrguard does not check).
	Change model.Change
	// After is the snapshot after Change as the validation analysed it (nil when nothing was
	// validated, or when it is the state before): the caller's alone, to keep (the webhook
	// lays an allowed change over the decisions that follow) or to give back with Release.
	After *model.Snapshot
}

// Release gives back what the decision's snapshot after the change holds for reuse
// (calico.State.Release); neither it nor anything read from it may be used afterwards.
func (d *Decision) Release() {
	if d != nil && d.After != nil {
		d.After.State.Release()
		d.After = nil
	}
}

// Review evaluates one admission request against the state before it as the API server's
// two webhook passes together would: mutation first, then validation of the mutated object.
// This is `rrguard review`.
func (r *Reviewer) Review(ctx context.Context, req *admissionv1.AdmissionRequest, before *model.Snapshot) *admissionv1.AdmissionResponse {
	resp, _ := r.Respond(ctx, req, before, MutateThenValidate)
	return resp
}

// Respond decides the request in mode and renders the response; it also returns the
// decision's findings (for metrics). A request rrguard cannot read is refused, except by the
// mutating pass, which never refuses: the validating pass says what is wrong.
func (r *Reviewer) Respond(ctx context.Context, req *admissionv1.AdmissionRequest, before *model.Snapshot, mode Mode) (*admissionv1.AdmissionResponse, []validate.Finding) {
	resp, d := r.RespondDecision(ctx, req, before, mode)
	d.Release()
	if d == nil {
		return resp, nil
	}
	return resp, d.Findings
}

// RespondDecision is Respond with the decision itself (nil when the request could not be
// read): the webhook keeps the change it allowed (see cluster.Store.Judge).
func (r *Reviewer) RespondDecision(ctx context.Context, req *admissionv1.AdmissionRequest, before *model.Snapshot, mode Mode) (*admissionv1.AdmissionResponse, *Decision) {
	d, err := r.Decide(ctx, req, before, mode)
	switch {
	case err != nil && !mode.validates():
		return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}, nil
	case err != nil:
		return ErrorResponse(req, err), nil
	}
	return d.Response(req), d
}

// Decide runs the mutation and/or the validation of mode for a request; before may be nil
// for Mutating.
func (r *Reviewer) Decide(ctx context.Context, req *admissionv1.AdmissionRequest, before *model.Snapshot, mode Mode) (*Decision, error) {
	newObj, err := decodeWithin(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	oldObj, err := decodeWithin(req.OldObject.Raw)
	if err != nil {
		return nil, fmt.Errorf("oldObject: %w", err)
	}
	if req.Operation == admissionv1.Delete && oldObj == nil && checked(req.Kind) {
		// Without the object being removed there is nothing to judge the removal by: allowing
		// would let a reflector or its peering go unchecked.
		return nil, fmt.Errorf("DELETE carries no oldObject, so rrguard cannot tell what it removes (the API server sends it since Kubernetes 1.15; an older one cannot be guarded)")
	}
	if newObj == nil && oldObj == nil {
		return &Decision{}, nil // not a kind rrguard checks
	}
	if newObj != nil && oldObj != nil && (newObj.Kind != oldObj.Kind || newObj.Name != oldObj.Name) {
		return nil, fmt.Errorf("object is %s %q but oldObject is %s %q: an update changes one object", newObj.Kind, newObj.Name, oldObj.Kind, oldObj.Name)
	}
	if d, err := r.overLimits(mode, newObj); d != nil || err != nil {
		return d, err
	}
	oldObj = withinLimits(oldObj)
	d := &Decision{}
	cfg := r.Engine.Config()
	if mode.mutates() && newObj != nil && newObj.CoreNode != nil && req.Operation != admissionv1.Delete && *cfg.AutoFillLabel {
		var oldNode *corev1.Node
		if oldObj != nil {
			oldNode = oldObj.CoreNode
		}
		d.Patch = mutate.ReflectorLabel(oldNode, newObj.CoreNode, cfg.ReflectorLabel)
		if len(d.Patch) > 0 {
			mutated := mutate.Apply(newObj.CoreNode, d.Patch, cfg.ReflectorLabel)
			newObj = &calico.Object{Kind: newObj.Kind, Group: newObj.Group, Name: newObj.Name, CoreNode: mutated, Node: calico.NodeFromCore(mutated)}
		}
	}
	if !mode.validates() {
		return d, nil
	}
	ch := model.Change{Operation: model.Operation(req.Operation), Object: newObj, Old: oldObj, DryRun: req.DryRun != nil && *req.DryRun,
		User: &model.UserInfo{Username: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups, Extra: extraOf(req.UserInfo.Extra)}}
	if stored := existing(req, newObj, before); stored != nil {
		ch.Operation, ch.Old = model.Update, stored
	}
	if req.Operation == admissionv1.Delete {
		ch.Object = nil
	}
	d.Change = ch
	d.Findings, d.After = r.Engine.EvaluateAfter(ctx, ch, before)
	if d.After.State == before.State {
		d.After = nil // nothing of its own to keep or give back
	}
	return d, nil
}

// existing is the object a CREATE names that the state before already holds, or nil.
// `calicoctl apply` creates first and updates when the API server answers AlreadyExists,
// which it does only after admission: rrguard judges that CREATE as the UPDATE it stands
// for, so that it refuses it for what the UPDATE would change (a BGPPeer changed, not
// added) and not for what the object already had, and calicoctl's answer is kubectl's.
func existing(req *admissionv1.AdmissionRequest, newObj *calico.Object, before *model.Snapshot) *calico.Object {
	if req.Operation != admissionv1.Create || newObj == nil || before == nil {
		return nil
	}
	return before.State.Object(newObj.Kind, newObj.Name)
}

// checked reports whether a request is about a kind rrguard checks.
func checked(gvk metav1.GroupVersionKind) bool {
	switch gvk.Group {
	case calico.GroupCore:
		return gvk.Kind == calico.KindNode
	case calico.GroupCRD:
		return judged(gvk.Kind)
	case calico.GroupV3:
		return gvk.Kind == calico.KindNode || judged(gvk.Kind)
	}
	return false
}

// judged reports whether rrguard judges changes to a Calico kind (BlockAffinities it only reads).
func judged(kind string) bool {
	switch kind {
	case calico.KindBGPPeer, calico.KindBGPConfiguration, calico.KindBGPFilter, calico.KindIPPool:
		return true
	}
	return false
}

func extraOf(extra map[string]authenticationv1.ExtraValue) map[string][]string {
	out := make(map[string][]string, len(extra))
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// decodeRaw decodes an object of a kind rrguard checks; nil for empty input or other kinds.
func decodeRaw(raw []byte) (*calico.Object, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	o, err := calico.DecodeJSON(raw)
	if errors.Is(err, calico.ErrUnknownKind) {
		return nil, nil
	}
	return o, err
}
