package webhook

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// The test helpers of the package's tests, fuzz targets and benchmarks.

// reviewJSON is an AdmissionReview of op on obj (the new object) and old, with uid.
func reviewJSON(t testing.TB, uid string, op admissionv1.Operation, kind metav1.GroupVersionKind, name string, obj, old any) string {
	t.Helper()
	raw := func(o any) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: types.UID(uid), Operation: op, Kind: kind, Name: name, Object: raw(obj), OldObject: raw(old)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	nodeGVK = metav1.GroupVersionKind{Version: "v1", Kind: "Node"}
	peerGVK = metav1.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"}
)

// seedServer is the validating handler on the seed-like state of validatetest: 20 nodes, two
// reflectors, mesh off.
func seedServer(t testing.TB) *Server {
	t.Helper()
	return &Server{rec: &countingRecorder{}, Store: storeOf(t, validatetest.Generate(validatetest.Layout{Nodes: 20, Reflectors: 2})), Reviewer: &admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}}
}

// storeOf fills a store with objects as the informers would.
func storeOf(tb testing.TB, objs []*calico.Object) *cluster.Store {
	tb.Helper()
	store := cluster.NewStore()
	for _, o := range objs {
		switch {
		case o.CoreNode != nil:
			store.UpsertNode(o.CoreNode)
		case o.Peer != nil:
			raw, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(o.Peer)
			u := &unstructured.Unstructured{Object: raw}
			u.SetAPIVersion("crd.projectcalico.org/v1")
			u.SetKind("BGPPeer")
			if _, err := store.Upsert(u); err != nil {
				tb.Fatal(err)
			}
		case o.Config != nil:
			raw, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(o.Config)
			u := &unstructured.Unstructured{Object: raw}
			u.SetAPIVersion("crd.projectcalico.org/v1")
			u.SetKind("BGPConfiguration")
			if _, err := store.Upsert(u); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return store
}

// countingRecorder is a Recorder that counts what the server reports.
type countingRecorder struct {
	mu                  sync.Mutex
	answered, notReady  int
	panicked, throttled map[string]int
}

func (r *countingRecorder) Answered(string, string, bool, []validate.Finding, time.Duration) {
	r.mu.Lock()
	r.answered++
	r.mu.Unlock()
}

func (r *countingRecorder) NotReady() {
	r.mu.Lock()
	r.notReady++
	r.mu.Unlock()
}

func (r *countingRecorder) Panicked(webhook string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panicked == nil {
		r.panicked = map[string]int{}
	}
	r.panicked[webhook]++
}

func (r *countingRecorder) InFlight(int, int64) {}

func (r *countingRecorder) Throttled(webhook, limit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.throttled == nil {
		r.throttled = map[string]int{}
	}
	r.throttled[webhook+"/"+limit]++
}

func (r *countingRecorder) Unreadable(int)                   {}
func (r *countingRecorder) PoliciesInUse(int)                {}
func (r *countingRecorder) PolicyReload(bool, time.Duration) {}
