// Package admissiontest holds what the admission benchmarks of pkg/admission and pkg/webhook
// share: the review they send and the CPU time they report.
package admissiontest

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// LabelReview is the AdmissionReview of a user labelling client node node-01234 of
// validatetest's layouts (the common, harmless write); the node has Calico annotations.
func LabelReview(tb testing.TB) []byte {
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

// ReportCPU reports the CPU time of the process per operation as cpu-ns/op (every thread:
// server, client and collector), which a loaded machine distorts less than the elapsed time.
// Call the returned function when the benchmark loop is done.
func ReportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
