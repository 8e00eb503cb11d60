package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/admission/admissiontest"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cradmission "sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

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
	review := admissiontest.LabelReview(b)
	b.Run("serial", func(b *testing.B) {
		c := ts.Client()
		b.ReportAllocs()
		defer admissiontest.ReportCPU(b)()
		for b.Loop() {
			post(b, c, ts.URL, review)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := ts.Client()
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		b.ReportAllocs()
		b.SetParallelism(4)
		defer admissiontest.ReportCPU(b)()
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
	benchHTTPS(b, &reviewHandler{webhook: "validate", ready: s.synced.Load, decide: s.validate, rec: s.rec, limits: newInFlight(Limits{}, s.rec)})
}

// BenchmarkAdmissionHTTPSFloor is controller-runtime's admission handler answering "allowed"
// at once over the same HTTPS stack: what any webhook pays for TLS, HTTP and the
// AdmissionReview's decoding and encoding.
func BenchmarkAdmissionHTTPSFloor(b *testing.B) {
	benchHTTPS(b, &cradmission.Webhook{Handler: cradmission.HandlerFunc(func(context.Context, cradmission.Request) cradmission.Response {
		return cradmission.Allowed("")
	})})
}

// BenchmarkValidateRackPeer is the validating handler deciding a new node selector for one of
// 1,000 rack BGPPeers (5,000 nodes): allowed, so the change is laid over the decisions that
// follow until the informers deliver it (none do here: each decision is taken against the
// state the one before left, as in a burst of writes).
func BenchmarkValidateRackPeer(b *testing.B) {
	objs := validatetest.Racks()
	store := storeOf(b, objs)
	s := &Server{Store: store, rec: &countingRecorder{}, Reviewer: &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}}
	store.Snapshot()
	var old *apiv3.BGPPeer
	for _, o := range objs {
		if o.Name == "rack-0005" {
			old = o.Peer.DeepCopy()
		}
	}
	old.TypeMeta = metav1.TypeMeta{APIVersion: "crd.projectcalico.org/v1", Kind: "BGPPeer"}
	reviews := make([]*admissionv1.AdmissionRequest, 256)
	for i := range reviews {
		p := old.DeepCopy()
		p.Spec.NodeSelector = fmt.Sprintf("rack in {'r5', 'x%d'}", i)
		var r admissionv1.AdmissionReview
		if err := json.Unmarshal([]byte(reviewJSON(b, fmt.Sprint(i), admissionv1.Update, peerGVK, old.Name, p, old)), &r); err != nil {
			b.Fatal(err)
		}
		reviews[i] = r.Request
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if resp := s.validate(b.Context(), reviews[i%len(reviews)]); !resp.Allowed {
			b.Fatalf("refused: %+v", resp.Result)
		}
		i++
	}
}
