package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReviewHandler(t *testing.T) {
	ghost := validatetest.Node("ghost", "10.99.0.1", "zone-0", "1.0.0.9")
	peer := validatetest.Peer("p", "all()", "has(route-reflector)")
	peerObj := map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]any{"name": "p"}, "spec": peer.Peer.Spec}
	v3PeerObj := map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer", "metadata": map[string]any{"name": "p"}, "spec": peer.Peer.Spec}
	cases := map[string]struct {
		method   string
		body     string
		notReady bool
		status   int
		allowed  bool   // for status 200
		contains string // in the body
	}{
		"GET is not a review":          {method: http.MethodGet, status: http.StatusMethodNotAllowed, contains: "POST only"},
		"PUT with a review is refused": {method: http.MethodPut, body: reviewJSON(t, "u", admissionv1.Create, peerGVK, "p", peerObj, nil), status: http.StatusMethodNotAllowed},
		"empty body":                   {status: http.StatusBadRequest, contains: "empty body"},
		"not JSON":                     {body: "\x00\x00\x00", status: http.StatusBadRequest, contains: "not an AdmissionReview"},
		"no request":                   {body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, status: http.StatusBadRequest, contains: "has no request"},
		"no uid":                       {body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`, status: http.StatusBadRequest, contains: "request.uid is empty"},
		"larger than the limit":        {body: `{"request":{"uid":"u","object":"` + strings.Repeat("x", MaxReviewSize) + `"}}`, status: http.StatusRequestEntityTooLarge, contains: "limit of 7 MiB"},
		"not ready: failurePolicy":     {body: reviewJSON(t, "u", admissionv1.Create, peerGVK, "p", peerObj, nil), notReady: true, status: http.StatusServiceUnavailable},
		"a new peer is judged":         {body: reviewJSON(t, "u", admissionv1.Create, peerGVK, "p", peerObj, nil), status: http.StatusOK, allowed: true},
		"deleting an unknown Node":     {body: reviewJSON(t, "u", admissionv1.Delete, nodeGVK, "ghost", nil, ghost.CoreNode), status: http.StatusOK, allowed: true},
		"deleting an unknown BGPPeer":  {body: reviewJSON(t, "u", admissionv1.Delete, peerGVK, "p", nil, peerObj), status: http.StatusOK, allowed: true},
		"deleting a peer without old":  {body: reviewJSON(t, "u", admissionv1.Delete, peerGVK, "p", nil, nil), status: http.StatusOK, contains: "carries no oldObject"},
		"an update that changes kind":  {body: reviewJSON(t, "u", admissionv1.Update, peerGVK, "p", peerObj, ghost.CoreNode), status: http.StatusOK, contains: "oldObject is Node"},
		"an object of another kind":    {body: reviewJSON(t, "u", admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, "x", map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "x"}}, nil), status: http.StatusBadRequest, contains: `request.kind is "v1 Pod": rrguard's webhook configurations register no such kind`},
		"a deletecollection of Pods":   {body: reviewJSON(t, "u", admissionv1.Delete, metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, "", nil, nil), status: http.StatusBadRequest, contains: "no such kind"},
		"a Node of another group":      {body: reviewJSON(t, "u", admissionv1.Delete, metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Node"}, "n", nil, ghost.CoreNode), status: http.StatusBadRequest, contains: `"example.com/v1 Node"`},
		"no request.kind":              {body: reviewJSON(t, "u", admissionv1.Create, metav1.GroupVersionKind{}, "p", peerObj, nil), status: http.StatusBadRequest, contains: "request.kind is empty"},
		"CONNECT":                      {body: reviewJSON(t, "u", admissionv1.Connect, nodeGVK, "ghost", ghost.CoreNode, nil), status: http.StatusBadRequest, contains: `request.operation is "CONNECT": rrguard judges CREATE, UPDATE and DELETE only`},
		"no operation":                 {body: reviewJSON(t, "u", "", peerGVK, "p", peerObj, nil), status: http.StatusBadRequest, contains: `request.operation is ""`},
		"a v3 BGPPeer is judged":       {body: reviewJSON(t, "u", admissionv1.Create, metav1.GroupVersionKind{Group: "projectcalico.org", Version: "v3", Kind: "BGPPeer"}, "p", v3PeerObj, nil), status: http.StatusOK, allowed: true},
	}
	s := seedServer(t)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := &reviewHandler{webhook: "validate", ready: func() bool { return !c.notReady }, decide: s.validate, rec: s.rec, limits: newInFlight(Limits{}, s.rec)}
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, ValidatePath, strings.NewReader(c.body)))
			body := rec.Body.String()
			if rec.Code != c.status {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, c.status, validate.Truncate(body, 300))
			}
			if !strings.Contains(body, c.contains) {
				t.Errorf("body does not say %q: %s", c.contains, validate.Truncate(body, 300))
			}
			if c.status != http.StatusOK {
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("not an AdmissionReview (%v): %s", err, body)
			}
			if out.Response.UID != "u" || out.Response.Allowed != c.allowed || out.APIVersion != "admission.k8s.io/v1" {
				t.Errorf("response %s, want uid u and allowed=%v", body, c.allowed)
			}
		})
	}
}

// TestPanicIsAnHTTPError: a panic while judging is answered HTTP 500 (so the failurePolicy
// decides), counted, and logged with the request's UID; it is never a denial.
func TestPanicIsAnHTTPError(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		logged = append(logged, args)
		mu.Unlock()
	}, funcr.Options{})
	rec := &countingRecorder{}
	h := &reviewHandler{webhook: "validate", log: logger, rec: rec, limits: newInFlight(Limits{}, rec), decide: func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		var a []int
		_ = a[-len(a)-1]
		return nil
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(reviewJSON(t, "uid-7", admissionv1.Delete, nodeGVK, "n", nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "uid-7") || !strings.Contains(string(body), "index out of range") {
		t.Errorf("HTTP %d %q, want 500 naming the request and the panic", resp.StatusCode, body)
	}
	if strings.Contains(string(body), `"allowed"`) {
		t.Errorf("a panic was answered as an admission decision: %s", body)
	}
	if got := rec.panicked["validate"]; got != 1 {
		t.Errorf("%d panics recorded, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], `"uid"="uid-7"`) || !strings.Contains(logged[0], "goroutine") {
		t.Errorf("log lines %q, want one with the uid and the stack", logged)
	}
}
