package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/admission"
	admissionv1 "k8s.io/api/admission/v1"
)

// heldHandler is a validating handler whose decisions wait until release is closed (each
// signals started first), under limits.
func heldHandler(limits Limits) (h *reviewHandler, rec *countingRecorder, started chan string, release chan struct{}) {
	rec = &countingRecorder{}
	started, release = make(chan string, 100), make(chan struct{})
	h = &reviewHandler{webhook: "validate", rec: rec, limits: newInFlight(limits, rec),
		decide: func(_ context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			started <- string(req.UID)
			<-release
			return &admissionv1.AdmissionResponse{Allowed: true}
		}}
	return h, rec, started, release
}

func serveBody(h http.Handler, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ValidatePath, strings.NewReader(body)))
	return rec
}

// TestDecisionsInFlightAreCapped: past the limit on decisions in flight a request waits its
// turn for QueueWait, then is answered 429 with Retry-After, counted; once a decision ends
// the next request is decided.
func TestDecisionsInFlightAreCapped(t *testing.T) {
	h, rec, started, release := heldHandler(Limits{Decisions: 2, QueueWait: 100 * time.Millisecond})
	review := reviewJSON(t, "u", admissionv1.Create, nodeGVK, "n", map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "n"}}, nil)
	var wg sync.WaitGroup
	answers := make(chan int, 3)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); answers <- serveBody(h, review).Code }()
		<-started
	}
	start := time.Now()
	third := serveBody(h, review)
	waited := time.Since(start)
	if third.Code != http.StatusTooManyRequests || third.Header().Get("Retry-After") != "1" ||
		!strings.Contains(third.Body.String(), "2 admission decisions are in flight, the limit, and none ended within 100ms") {
		t.Errorf("third request: HTTP %d, Retry-After %q: %s", third.Code, third.Header().Get("Retry-After"), third.Body.String())
	}
	if waited < 100*time.Millisecond {
		t.Errorf("answered 429 after %v: it did not wait its turn", waited)
	}
	if rec.throttled["validate/decisions"] != 1 {
		t.Errorf("throttled %v, want one validate/decisions", rec.throttled)
	}
	// A request that arrives while the slots are full is decided when one ends.
	fourth := make(chan int, 1)
	go func() { fourth <- serveBody(h, review).Code }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if code := <-fourth; code != http.StatusOK {
		t.Errorf("a request queued behind full slots: HTTP %d, want 200", code)
	}
	close(answers)
	for code := range answers {
		if code != http.StatusOK {
			t.Errorf("a decision in flight: HTTP %d", code)
		}
	}
}

// TestLargeReviewsShareTheMemoryLimit: large reviews hold their estimated cost while they are
// decided; one that does not fit is answered 429 at once, while a review of a usual size is
// still decided.
func TestLargeReviewsShareTheMemoryLimit(t *testing.T) {
	h, rec, started, release := heldHandler(Limits{Decisions: 8, Memory: 20 << 20})
	large := func(uid string) string {
		return reviewJSON(t, uid, admissionv1.Create, peerGVK, "p", map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
			"metadata": map[string]any{"name": "p"}, "spec": map[string]any{"peerSelector": strings.Repeat("x", 1<<20)}}, nil)
	}
	first := large("first")
	var req admissionv1.AdmissionReview
	if err := json.Unmarshal([]byte(first), &req); err != nil {
		t.Fatal(err)
	}
	need := 2*int64(len(first)) + admission.Cost(req.Request)
	if need < 8<<20 || need > 10<<20 {
		t.Fatalf("a review of a 1 MiB selector is estimated at %d bytes; the test wants two to fit in 20 MiB and three not", need)
	}
	var wg sync.WaitGroup
	for _, uid := range []string{"first", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := serveBody(h, large(uid)).Code; code != http.StatusOK {
				t.Errorf("%s: HTTP %d", uid, code)
			}
		}()
		<-started
	}
	third := serveBody(h, large("third"))
	if third.Code != http.StatusTooManyRequests || third.Header().Get("Retry-After") != "1" ||
		!strings.Contains(third.Body.String(), "this review needs about 9 MiB to read and judge, and large reviews already hold most of the 20 MiB") {
		t.Errorf("third large review: HTTP %d, Retry-After %q: %s", third.Code, third.Header().Get("Retry-After"), third.Body.String())
	}
	usual := make(chan int, 1)
	go func() {
		usual <- serveBody(h, reviewJSON(t, "usual", admissionv1.Create, nodeGVK, "n", map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "n"}}, nil)).Code
	}()
	if uid := <-started; uid != "usual" {
		t.Fatalf("decided %q, want the usual review", uid)
	}
	close(release)
	wg.Wait()
	if code := <-usual; code != http.StatusOK {
		t.Errorf("the usual review: HTTP %d", code)
	}
	if rec.throttled["validate/memory"] != 1 || h.limits.reserved != 0 {
		t.Errorf("throttled %v, %d bytes still held; want one validate/memory and none", rec.throttled, h.limits.reserved)
	}
}
