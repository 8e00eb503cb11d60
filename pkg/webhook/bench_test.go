package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// benchReview is the AdmissionReview of the benchmarks: a user labels a client node; the node
// has Calico annotations.
func benchReview() []byte {
	old := validatetest.Node("node-01234", "10.1.4.210", "zone-0", "")
	changed := old.CoreNode.DeepCopy()
	changed.Labels["team"] = "payments"
	oldRaw, _ := json.Marshal(old.CoreNode)
	newRaw, _ := json.Marshal(changed)
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}, Name: "node-01234",
			Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: newRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		},
	})
	return review
}

func post(b *testing.B, c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &r); err != nil || r.Response == nil || !r.Response.Allowed {
		b.Fatalf("unexpected answer %d: %s", resp.StatusCode, raw)
	}
}

// benchHTTPS sends review to the handler over HTTPS (keep-alive, as the API server does),
// serially and from parallel clients (reviews/s on the machine's cores).
func benchHTTPS(b *testing.B, h http.Handler) {
	ts := httptest.NewTLSServer(h)
	b.Cleanup(ts.Close)
	review := benchReview()
	b.Run("serial", func(b *testing.B) {
		c := ts.Client()
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			post(b, c, ts.URL, review)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := ts.Client()
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		b.ReportAllocs()
		b.SetParallelism(4)
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post(b, c, ts.URL, review)
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reviews/s")
	})
}

// BenchmarkAdmissionHTTPS is rrguard's validating handler over HTTPS with a store of 5,000
// nodes, as the API server reaches it. Its floor is BenchmarkAdmissionHTTPSFloor.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	store := storeOf(b, validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 4}))
	s := &Server{Store: store, rec: &countingRecorder{}, Reviewer: &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}}
	s.synced.Store(true)
	store.Snapshot() // built once, when the cache changes, not per request
	benchHTTPS(b, &reviewHandler{webhook: "validate", ready: s.synced.Load, decide: s.validate, rec: s.rec})
}

// BenchmarkAdmissionHTTPSFloor is controller-runtime's admission handler answering "allowed"
// at once over the same HTTPS stack: what any webhook pays for TLS, HTTP and the
// AdmissionReview's decoding and encoding.
func BenchmarkAdmissionHTTPSFloor(b *testing.B) {
	benchHTTPS(b, &cradmission.Webhook{Handler: cradmission.HandlerFunc(func(context.Context, cradmission.Request) cradmission.Response {
		return cradmission.Allowed("")
	})})
}

// reportCPU reports the CPU time of the process per operation (every thread: server, client
// and collector), which a loaded machine distorts less than the elapsed time. Call the
// returned function when the loop is done.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
