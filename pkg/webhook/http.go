package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// MaxReviewSize is the largest AdmissionReview body the webhook reads: the API server's own
// request limit (3 MiB) for the object and the old object, with room for the envelope.
const MaxReviewSize = 7 << 20

// reviewHandler is the HTTP side of one admission webhook path. It answers only well-formed
// AdmissionReviews: anything the API server would never send gets an HTTP error, never an
// "allowed", and so does a request rrguard cannot judge (not ready: 503; a panic: 500), so
// that the webhook's failurePolicy decides instead of a made-up answer.
//
// controller-runtime's admission.Webhook is not used: it answers its own errors and recovered
// panics as denials inside an HTTP 200, which failurePolicy Ignore cannot override.
type reviewHandler struct {
	webhook string // validate or mutate, for metrics and logs
	ready   func() bool
	decide  func(context.Context, *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse
	log     logr.Logger
	rec     Recorder
	limits  *inFlight // shared by the server's handlers
}

func (h *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, fmt.Sprintf("rrguard: %s %s: admission webhooks take POST only", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
		return
	}
	if h.ready != nil && !h.ready() {
		h.rec.NotReady()
		http.Error(w, "rrguard: the cluster model is not complete yet; try again shortly", http.StatusServiceUnavailable)
		return
	}
	// Memory first, before the body is read: the body and the review's copy of its objects.
	body := r.ContentLength
	if body < 0 || body > MaxReviewSize {
		body = MaxReviewSize
	}
	held, ok := h.limits.reserve(2*body, 2*freeBody)
	if !ok {
		h.limits.tooMany(w, h.webhook, throttledMemory, 2*body)
		return
	}
	defer h.limits.release(held)
	buf := buffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	review, status, err := readReview(w, r, buf)
	if err != nil {
		http.Error(w, "rrguard: "+err.Error(), status)
		return
	}
	req := review.Request
	// Then what decoding and judging its objects will take, before any of it is decoded.
	cost := admission.Cost(req)
	held, ok = h.limits.reserve(cost, freeCost)
	if !ok {
		h.limits.tooMany(w, h.webhook, throttledMemory, cost+2*body)
		return
	}
	defer h.limits.release(held)
	if !h.limits.enter(r.Context()) {
		h.limits.tooMany(w, h.webhook, throttledDecisions, 0)
		return
	}
	defer h.limits.leave()
	defer func() {
		if p := recover(); p != nil {
			h.rec.Panicked(h.webhook)
			h.log.Error(fmt.Errorf("%v", p), "panic while judging an admission request; answered HTTP 500 so that the failurePolicy decides",
				"webhook", h.webhook, "uid", req.UID, "operation", req.Operation, "kind", req.Kind.Kind, "name", req.Name, "stack", string(debug.Stack()))
			http.Error(w, fmt.Sprintf("rrguard: internal error judging %s %s %q (request %s): %v", req.Operation, req.Kind.Kind, req.Name, req.UID, p), http.StatusInternalServerError)
		}
	}()
	resp := h.decide(r.Context(), req)
	resp.UID = req.UID
	out := admissionv1.AdmissionReview{Response: resp}
	out.APIVersion, out.Kind = review.APIVersion, "AdmissionReview"
	if out.APIVersion != "admission.k8s.io/v1beta1" {
		out.APIVersion = "admission.k8s.io/v1"
	}
	buf.Reset() // the request decoded copies what it keeps
	if err := json.NewEncoder(buf).Encode(out); err != nil {
		panic(fmt.Errorf("encode the response: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// buffers recycles the buffers a request is read into and its answer written from
// (*bytes.Buffer); one larger than maxPooledBuffer is left to the collector.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		b.Reset()
		buffers.Put(b)
	}
}

// readReview reads an AdmissionReview request body into buf and checks it; on error it
// returns the HTTP status to answer with.
func readReview(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (*admissionv1.AdmissionReview, int, error) {
	if n := r.ContentLength; n > 0 && n <= MaxReviewSize {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom reads until EOF: room for its last, empty read
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxReviewSize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the AdmissionReview is larger than the limit of %d MiB", MaxReviewSize>>20)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read the AdmissionReview: %w", err)
	}
	body := buf.Bytes()
	if len(body) == 0 {
		return nil, http.StatusBadRequest, errors.New("empty body: send an admission.k8s.io/v1 AdmissionReview")
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("not an AdmissionReview: %s", validate.Truncate(err.Error(), validate.MaxQuote))
	}
	switch {
	case review.Request == nil:
		return nil, http.StatusBadRequest, errors.New("the AdmissionReview has no request")
	case review.Request.UID == types.UID(""):
		return nil, http.StatusBadRequest, errors.New("the AdmissionReview's request.uid is empty: the API server always sets it")
	}
	// What rrguard's webhook configurations never send is not judged, nor allowed: the
	// failurePolicy decides.
	req := review.Request
	switch {
	case req.Kind.Kind == "":
		return nil, http.StatusBadRequest, errors.New("the AdmissionReview's request.kind is empty: the API server always sets it")
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update && req.Operation != admissionv1.Delete:
		return nil, http.StatusBadRequest, fmt.Errorf("request.operation is %s: rrguard judges CREATE, UPDATE and DELETE only, as its webhook configurations register", validate.Quote(string(req.Operation)))
	case !admission.Judges(req.Kind):
		return nil, http.StatusBadRequest, fmt.Errorf("request.kind is %s: rrguard's webhook configurations register no such kind", validate.Quote(gvkString(req.Kind)))
	}
	return &review, 0, nil
}

// gvkString writes a kind as apiVersion and kind: "v1 Pod", "apps/v1 Deployment".
func gvkString(k metav1.GroupVersionKind) string {
	return strings.TrimPrefix(k.Group+"/"+k.Version, "/") + " " + k.Kind
}
