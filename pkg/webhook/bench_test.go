package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// benchServer is rrguard's validating handler over HTTPS with a store of 5,000 nodes, as the
// API server reaches it; noop is controller-runtime's admission handler answering "allowed"
// at once: the floor any webhook pays for TLS, HTTP and AdmissionReview decoding.
func benchServers(b *testing.B) (rrguard, noop *httptest.Server, review []byte) {
	b.Helper()
	store := storeOf(b, validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 4}))
	s := &Server{Store: store, rec: &countingRecorder{}, Reviewer: &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}}
	s.synced.Store(true)
	store.Snapshot() // built once, when the cache changes, not per request
	rrguard = httptest.NewTLSServer(&reviewHandler{webhook: "validate", ready: s.synced.Load, decide: s.validate, rec: s.rec})
	noop = httptest.NewTLSServer(&cradmission.Webhook{Handler: cradmission.HandlerFunc(func(context.Context, cradmission.Request) cradmission.Response {
		return cradmission.Allowed("")
	})})
	b.Cleanup(func() { rrguard.Close(); noop.Close() })

	// A user labels a client node: both webhooks see it; the node has Calico annotations.
	old := validatetest.Node("node-01234", "10.1.4.210", "zone-0", "")
	changed := old.CoreNode.DeepCopy()
	changed.Labels["team"] = "payments"
	oldRaw, _ := json.Marshal(old.CoreNode)
	newRaw, _ := json.Marshal(changed)
	review, _ = json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Node"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}, Name: "node-01234",
			Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: newRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		},
	})
	return rrguard, noop, review
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

// BenchmarkAdmissionHTTPS measures one review end to end over HTTPS (keep-alive, as the API
// server does), serially and with parallel clients (reviews/s on the machine's cores).
func BenchmarkAdmissionHTTPS(b *testing.B) {
	rrguard, noop, review := benchServers(b)
	for _, srv := range []struct {
		name string
		ts   *httptest.Server
	}{{"noop-floor", noop}, {"rrguard-5000-nodes", rrguard}} {
		b.Run(srv.name+"/serial", func(b *testing.B) {
			c := srv.ts.Client()
			b.ReportAllocs()
			for b.Loop() {
				post(b, c, srv.ts.URL, review)
			}
		})
		b.Run(srv.name+"/parallel", func(b *testing.B) {
			c := srv.ts.Client()
			c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					post(b, c, srv.ts.URL, review)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reviews/s")
		})
	}
}
