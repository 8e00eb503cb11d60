package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fuzzHandlers are the validating and mutating handlers on the seed-like state of validatetest.
func fuzzHandlers(tb testing.TB) (validating, mutating *reviewHandler) {
	s := seedServer(tb)
	limits := newInFlight(Limits{}, s.rec)
	return &reviewHandler{webhook: "validate", decide: s.validate, rec: s.rec, limits: limits}, &reviewHandler{webhook: "mutate", decide: s.mutate, rec: s.rec, limits: limits}
}

// serve sends body to h and checks what every answer must be: an HTTP error for a malformed
// review (never a panic's 500), else an AdmissionReview answering the request's UID whose
// warnings fit kubectl and whose denial says why. It returns the response (nil on an error).
func serve(t *testing.T, h *reviewHandler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body)))
	switch rec.Code {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return nil
	default:
		t.Fatalf("%s: HTTP %d: %s", h.webhook, rec.Code, rec.Body.String())
	}
	var in, out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
		t.Fatalf("%s: answered 200 to a body that is not a review (%v)", h.webhook, err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		t.Fatalf("%s: not an AdmissionReview response (%v): %s", h.webhook, err, rec.Body.String())
	}
	r := out.Response
	if r.UID != in.Request.UID {
		t.Fatalf("%s: response UID %q for request %q", h.webhook, r.UID, in.Request.UID)
	}
	for _, w := range r.Warnings {
		if len(w) > admission.MaxWarningLength || !utf8.ValidString(w) {
			t.Fatalf("%s: warning of %d bytes or invalid UTF-8: %q", h.webhook, len(w), w)
		}
	}
	if !r.Allowed && (r.Result == nil || r.Result.Message == "") {
		t.Fatalf("%s: a denial without a message: %s", h.webhook, rec.Body.String())
	}
	if h.webhook == "mutate" && !r.Allowed {
		t.Fatalf("the mutating webhook refused: %s", r.Result.Message)
	}
	return r
}

// FuzzReviewBytes: any request body gets an HTTP error or a well-formed answer; no panic.
func FuzzReviewBytes(f *testing.F) {
	ghost := validatetest.Node("ghost", "10.99.0.1", "zone-0", "1.0.0.9")
	known := validatetest.Node("node-00003", "10.1.0.3", "zone-0", "")
	peer := map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]any{"name": "node-peer-to-rr"},
		"spec": map[string]any{"nodeSelector": "all()", "peerSelector": "has(route-reflector)"}}
	for _, s := range []string{
		reviewJSON(f, "u", admissionv1.Delete, nodeGVK, "ghost", nil, ghost.CoreNode),
		reviewJSON(f, "u", admissionv1.Update, nodeGVK, "node-00003", known.CoreNode, known.CoreNode),
		reviewJSON(f, "u", admissionv1.Update, peerGVK, "node-peer-to-rr", peer, peer),
		reviewJSON(f, "u", admissionv1.Delete, peerGVK, "node-peer-to-rr", nil, peer),
		reviewJSON(f, "u", admissionv1.Create, metav1.GroupVersionKind{Group: "projectcalico.org", Version: "v3", Kind: "BGPConfiguration"}, "default",
			map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"}, "spec": map[string]any{"nodeToNodeMeshEnabled": true}}, nil),
		`{"request":{"uid":"u"}}`, `{"request":{"uid":"u","operation":"DELETE","kind":{"kind":"BGPPeer","group":"crd.projectcalico.org"}}}`,
		`{"request":{"uid":"u","object":{"apiVersion":"v1","kind":"Node"}}}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	validating, mutating := fuzzHandlers(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		serve(t, validating, body)
		serve(t, mutating, body)
	})
}

// number is s as a JSON number when it is an integer, else the string itself.
func number(s string) any {
	if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
		return n
	}
	return s
}

// FuzzCalicoChange is the structured target: it builds a valid AdmissionReview of a change
// to a Node, BGPPeer or BGPConfiguration (either API group) from fuzzed Calico fields, for an
// object the state holds or not, and checks the answers; a value a message quotes is never
// repeated whole when it is long.
func FuzzCalicoChange(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(3), "", "10.1.0.3", "1.0.0.1", "", "route-reflector", "true", "", "", "")
	f.Add(uint8(2), uint8(0), uint8(200), "ghost", "10.9.9.9", "1.0.0.1", "64512", "route-reflector", "true", "", "", "")
	f.Add(uint8(1), uint8(1), uint8(0), "node-peer-to-rr", "", "", "", "", "", "!has(route-reflector)", "has(router-reflector)", "")
	f.Add(uint8(2), uint8(1), uint8(1), "rr-to-rr-peer", "", "", "", "", "", "has(route-reflector)", "has(route-reflector)", "")
	f.Add(uint8(1), uint8(2), uint8(0), "default", "", "", "65535", "", "", "", "", "false")
	f.Add(uint8(2), uint8(2), uint8(0), "default", "", "", "", "", "", "", "", "")
	f.Add(uint8(0), uint8(3), uint8(9), "p", "10.0.0.1:179", "", "4294967296", "", "", "all()", "", "")
	f.Add(uint8(1), uint8(4), uint8(1), "node-00001", "10.1.0.1/16", "300.1.1.1", "abc", "zone", strings.Repeat("z", 500), strings.Repeat("a", 3000), "global()", "true")
	validating, mutating := fuzzHandlers(f)
	knownNodes := []string{"node-00000", "node-00001", "node-00002", "node-00019"}
	f.Fuzz(func(t *testing.T, op, kind, pick uint8, name, addr, clusterID, asn, labelKey, labelValue, nodeSel, peerSel, mesh string) {
		if int(pick) < len(knownNodes) && (name == "" || kind%5 == 0 || kind%5 == 4) {
			name = knownNodes[pick]
		}
		var obj, old map[string]any
		var gvk metav1.GroupVersionKind
		meta := func() map[string]any {
			m := map[string]any{"name": name}
			if labelKey != "" {
				m["labels"] = map[string]any{labelKey: labelValue}
			}
			return m
		}
		switch kind % 5 {
		case 0: // core/v1 Node
			gvk = nodeGVK
			ann := map[string]any{}
			for k, v := range map[string]string{"projectcalico.org/IPv4Address": addr, "projectcalico.org/RouteReflectorClusterID": clusterID, "projectcalico.org/ASNumber": asn} {
				if v != "" {
					ann[k] = v
				}
			}
			m := meta()
			m["annotations"] = ann
			obj = map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": m,
				"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": mesh}}}}
			o := validatetest.Node(name, "10.1.0.1", "zone-0", "")
			raw, _ := json.Marshal(o.CoreNode)
			_ = json.Unmarshal(raw, &old)
		case 1, 3: // BGPPeer, crd.projectcalico.org/v1 or projectcalico.org/v3
			group, version := "crd.projectcalico.org", "v1"
			if kind%5 == 3 {
				group, version = "projectcalico.org", "v3"
			}
			gvk = metav1.GroupVersionKind{Group: group, Version: version, Kind: "BGPPeer"}
			spec := map[string]any{}
			for k, v := range map[string]string{"nodeSelector": nodeSel, "peerSelector": peerSel, "peerIP": addr, "node": labelValue} {
				if v != "" {
					spec[k] = v
				}
			}
			if asn != "" {
				spec["asNumber"] = number(asn)
			}
			obj = map[string]any{"apiVersion": group + "/" + version, "kind": "BGPPeer", "metadata": meta(), "spec": spec}
			old = map[string]any{"apiVersion": group + "/" + version, "kind": "BGPPeer", "metadata": map[string]any{"name": name},
				"spec": map[string]any{"nodeSelector": "!has(route-reflector)", "peerSelector": "has(route-reflector)"}}
		case 2: // BGPConfiguration
			gvk = metav1.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPConfiguration"}
			spec := map[string]any{}
			switch mesh {
			case "true":
				spec["nodeToNodeMeshEnabled"] = true
			case "false":
				spec["nodeToNodeMeshEnabled"] = false
			case "":
			default:
				spec["nodeToNodeMeshEnabled"] = mesh
			}
			if asn != "" {
				spec["asNumber"] = number(asn)
			}
			obj = map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration", "metadata": meta(), "spec": spec}
			old = map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration", "metadata": map[string]any{"name": name},
				"spec": map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": 63400}}
		case 4: // projectcalico.org/v3 Node
			gvk = metav1.GroupVersionKind{Group: "projectcalico.org", Version: "v3", Kind: "Node"}
			bgp := map[string]any{}
			for k, v := range map[string]string{"ipv4Address": addr, "routeReflectorClusterID": clusterID, "asNumber": asn} {
				if v != "" {
					bgp[k] = v
				}
			}
			obj = map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": meta(), "spec": map[string]any{"bgp": bgp}}
			old = map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": map[string]any{"name": name},
				"spec": map[string]any{"bgp": map[string]any{"ipv4Address": "10.1.0.1/16"}}}
		}
		var review string
		switch op % 3 {
		case 0:
			review = reviewJSON(t, "uid-fuzz", admissionv1.Create, gvk, name, obj, nil)
		case 1:
			review = reviewJSON(t, "uid-fuzz", admissionv1.Update, gvk, name, obj, old)
		case 2:
			review = reviewJSON(t, "uid-fuzz", admissionv1.Delete, gvk, name, nil, obj)
		}
		for _, h := range []*reviewHandler{validating, mutating} {
			r := serve(t, h, []byte(review))
			if r == nil {
				t.Fatalf("%s: a well-formed review was answered with an HTTP error", h.webhook)
			}
			if r.Result == nil {
				continue
			}
			for _, v := range []string{addr, clusterID, asn, labelKey, labelValue, nodeSel, peerSel, mesh} {
				if len(v) > 500 && strings.Contains(r.Result.Message, v) {
					t.Fatalf("%s: the message repeats a %d-byte value whole: %.300s…", h.webhook, len(v), r.Result.Message)
				}
			}
		}
	})
}
