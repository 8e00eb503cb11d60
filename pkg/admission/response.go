package admission

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxWarningLength is the longest admission warning rrguard sends (kubectl prints each on a line).
const MaxWarningLength = 120

// AuditAnnotationPrefix prefixes the audit annotations of audit-level findings.
const AuditAnnotationPrefix = "rrguard.io/"

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

// ErrorResponse refuses a request rrguard cannot read, saying why.
func ErrorResponse(req *admissionv1.AdmissionRequest, err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		UID: req.UID, Allowed: false,
		Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest,
			Message: fmt.Sprintf("rrguard could not read %s %q: %v", req.Kind.Kind, req.Name, err),
		},
	}
}
