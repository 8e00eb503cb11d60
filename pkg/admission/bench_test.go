package admission_test

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// labelReview is the AdmissionReview of a user labelling a client node (the common, harmless
// write); the node has Calico annotations.
func labelReview(tb testing.TB) []byte {
	tb.Helper()
	old := validatetest.Node("node-01234", "10.1.4.210", "zone-0", "")
	changed := old.CoreNode.DeepCopy()
	changed.Labels["team"] = "payments"
	oldRaw, err := json.Marshal(old.CoreNode)
	if err != nil {
		tb.Fatal(err)
	}
	newRaw, err := json.Marshal(changed)
	if err != nil {
		tb.Fatal(err)
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}, Name: "node-01234",
			Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: newRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return review
}

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
	before := validate.NewSnapshot(calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 4})))
	r := &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}
	body := labelReview(b)
	b.ReportAllocs()
	defer reportCPU(b)()
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
	body := labelReview(b)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		answer(b, body, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		})
	}
}

// reportCPU reports the CPU time of the process per operation (the collector's included),
// which a loaded machine distorts less than the elapsed time. Call the returned function when
// the loop is done.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
