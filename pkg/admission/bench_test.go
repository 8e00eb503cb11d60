package admission_test

import (
	"encoding/json"
	"testing"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/admission/admissiontest"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
)

// answer decodes the review, lets decide answer its request and encodes the response: a
// webhook's work on one request between reading the body and writing the answer.
func answer(b *testing.B, body []byte, decide func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		b.Fatal(err)
	}
	resp := decide(review.Request)
	if !resp.Allowed {
		b.Fatalf("denied: %+v", resp.Result)
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if _, err := json.Marshal(out); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReview is the validating webhook's decision on a label change at 5,000 nodes,
// from the request's bytes to the response's, without HTTP. Its floor is
// BenchmarkReviewFloor.
func BenchmarkReview(b *testing.B) {
	before := model.NewSnapshot(calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 4})))
	r := &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}
	body := admissiontest.LabelReview(b)
	b.ReportAllocs()
	defer admissiontest.ReportCPU(b)()
	for b.Loop() {
		answer(b, body, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			resp, _ := r.Respond(b.Context(), req, before, admission.Validating)
			return resp
		})
	}
}

// BenchmarkReviewFloor is a bare json.Unmarshal of the same AdmissionReview and the encoding
// of an "allowed": what any webhook does with it.
func BenchmarkReviewFloor(b *testing.B) {
	body := admissiontest.LabelReview(b)
	b.ReportAllocs()
	defer admissiontest.ReportCPU(b)()
	for b.Loop() {
		answer(b, body, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		})
	}
}
