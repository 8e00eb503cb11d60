package admission

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResponse(t *testing.T) {
	req := &admissionv1.AdmissionRequest{UID: "u", Name: "p", Kind: metav1.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"}}
	d := &Decision{Findings: []validate.Finding{
		{Rule: "selector-syntax", Action: validate.Deny, Field: "spec.peerSelector", Message: "bad"},
		{Rule: "route-propagation", Action: validate.Deny, Field: "spec", Message: "cut off"},
		{Rule: "selector-matches-nothing", Action: validate.Warn, Message: strings.Repeat("é", 200)},
		{Rule: "reflector-label", Action: validate.Audit, Message: "recorded"},
	}}
	resp := d.Response(req)
	if resp.Allowed || resp.UID != "u" {
		t.Fatalf("response %+v", resp)
	}
	st := resp.Result
	if st.Reason != metav1.StatusReasonInvalid || st.Code != 422 || !strings.Contains(st.Message, "(route-propagation, selector-syntax)") {
		t.Errorf("status %+v", st)
	}
	if len(st.Details.Causes) != 2 || st.Details.Causes[0].Field != "spec.peerSelector" || !strings.HasPrefix(st.Details.Causes[0].Message, "[selector-syntax] ") {
		t.Errorf("causes %+v", st.Details.Causes)
	}
	if len(resp.Warnings) != 1 || len(resp.Warnings[0]) > MaxWarningLength || !utf8.ValidString(resp.Warnings[0]) || !strings.HasPrefix(resp.Warnings[0], "[selector-matches-nothing] ") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	if resp.AuditAnnotations["rrguard.io/reflector-label"] != "recorded" {
		t.Errorf("audit annotations %v", resp.AuditAnnotations)
	}
	// Without denials: allowed, warnings kept, the patch attached.
	d.Findings = d.Findings[2:]
	d.Patch = nil
	if resp := d.Response(req); !resp.Allowed || len(resp.Warnings) != 1 || resp.Patch != nil {
		t.Errorf("allowed response %+v", resp)
	}
}
