// Package webhook turns admission requests into rrguard decisions: decode, mutate (reflector
// label), evaluate against the cluster state, and answer. The same Review serves the
// in-cluster webhook and `rrguard review`, so both give the same answer.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/mutate"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxWarningLength is the longest admission warning rrguard sends (kubectl prints each on a line).
const MaxWarningLength = 120

// AuditAnnotationPrefix prefixes the audit annotations of audit-level findings.
const AuditAnnotationPrefix = "rrguard.io/"

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
	Change validate.Change
}

// Review evaluates one admission request against the state before it as the API server's
// two webhook passes together would: mutation first, then validation of the mutated object.
// This is `rrguard review`.
func (r *Reviewer) Review(ctx context.Context, req *admissionv1.AdmissionRequest, before *validate.Snapshot) *admissionv1.AdmissionResponse {
	return r.respond(ctx, req, before, true, true)
}

// Mutate is the mutating webhook's answer: the reflector-label patch, never a denial.
func (r *Reviewer) Mutate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	return r.respond(ctx, req, nil, true, false)
}

func (r *Reviewer) respond(ctx context.Context, req *admissionv1.AdmissionRequest, before *validate.Snapshot, doMutate, doValidate bool) *admissionv1.AdmissionResponse {
	d, err := r.Decide(ctx, req, before, doMutate, doValidate)
	if err != nil {
		if !doValidate {
			// The mutating pass never refuses: the validating pass says what is wrong.
			return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		}
		return errorResponse(req, err)
	}
	return d.Response(req)
}

// Decide runs mutation and/or validation for a request.
func (r *Reviewer) Decide(ctx context.Context, req *admissionv1.AdmissionRequest, before *validate.Snapshot, doMutate, doValidate bool) (*Decision, error) {
	newObj, err := decodeRaw(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	oldObj, err := decodeRaw(req.OldObject.Raw)
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
	d := &Decision{}
	cfg := r.Engine.Config()
	if doMutate && newObj != nil && newObj.CoreNode != nil && req.Operation != admissionv1.Delete && *cfg.AutoFillLabel {
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
	if !doValidate {
		return d, nil
	}
	ch := validate.Change{Operation: validate.Operation(req.Operation), Object: newObj, Old: oldObj, DryRun: req.DryRun != nil && *req.DryRun,
		User: &validate.UserInfo{Username: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups, Extra: extraOf(req.UserInfo.Extra)}}
	if req.Operation == admissionv1.Delete {
		ch.Object = nil
	}
	d.Change = ch
	d.Findings = r.Engine.Evaluate(ctx, ch, before)
	return d, nil
}

// checked reports whether a request is about a kind rrguard checks.
func checked(gvk metav1.GroupVersionKind) bool {
	switch gvk.Group {
	case calico.GroupCore:
		return gvk.Kind == calico.KindNode
	case calico.GroupCRD:
		return gvk.Kind == calico.KindBGPPeer || gvk.Kind == calico.KindBGPConfiguration
	case calico.GroupV3:
		return gvk.Kind == calico.KindNode || gvk.Kind == calico.KindBGPPeer || gvk.Kind == calico.KindBGPConfiguration
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

// Response renders the decision as kubectl users will read it.
func (d *Decision) Response(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	var denials []validate.Finding
	for _, f := range d.Findings {
		switch f.Action {
		case validate.Deny:
			denials = append(denials, f)
		case validate.Warn:
			resp.Warnings = append(resp.Warnings, Warning(f))
		case validate.Audit:
			if resp.AuditAnnotations == nil {
				resp.AuditAnnotations = map[string]string{}
			}
			key := AuditAnnotationPrefix + f.Rule
			if prev, ok := resp.AuditAnnotations[key]; ok {
				resp.AuditAnnotations[key] = prev + "; " + f.Message
			} else {
				resp.AuditAnnotations[key] = f.Message
			}
		}
	}
	if len(denials) > 0 {
		resp.Allowed = false
		resp.Result = denialStatus(req, denials)
		return resp
	}
	if len(d.Patch) > 0 {
		raw, _ := json.Marshal(d.Patch)
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = raw, &pt
	}
	return resp
}

// Warning renders a warn-level finding as one admission warning line.
func Warning(f validate.Finding) string {
	return validate.Truncate("["+f.Rule+"] "+f.Message, MaxWarningLength)
}

func denialStatus(req *admissionv1.AdmissionRequest, denials []validate.Finding) *metav1.Status {
	var msgs []string
	name := req.Name
	if name == "" && len(denials) > 0 {
		name = denials[0].Object.Name // a deletecollection names no object in the request
	}
	details := &metav1.StatusDetails{Name: name, Group: req.Kind.Group, Kind: req.Kind.Kind}
	rules := map[string]bool{}
	for _, f := range denials {
		msgs = append(msgs, "["+f.Rule+"] "+f.Message)
		rules[f.Rule] = true
		details.Causes = append(details.Causes, metav1.StatusCause{
			Type: metav1.CauseTypeFieldValueInvalid, Field: f.Field, Message: "[" + f.Rule + "] " + f.Message,
		})
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("rrguard refused %s %q (%s): %s", req.Kind.Kind, name, strings.Join(ids, ", "), strings.Join(msgs, "; ")),
		Details: details,
	}
}

func errorResponse(req *admissionv1.AdmissionRequest, err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		UID: req.UID, Allowed: false,
		Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest,
			Message: fmt.Sprintf("rrguard could not read %s %q: %v", req.Kind.Kind, req.Name, err),
		},
	}
}
