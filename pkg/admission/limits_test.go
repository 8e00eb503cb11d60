package admission

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	peerKind = metav1.GroupVersionKind{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBGPPeer}
	nodeKind = metav1.GroupVersionKind{Version: "v1", Kind: calico.KindNode}
	poolKind = metav1.GroupVersionKind{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindIPPool}
)

func peerJSON(name, nodeSelector, peerSelector string) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"nodeSelector": nodeSelector, "peerSelector": peerSelector}})
	return b
}

func poolJSON(name, nodeSelector string) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"cidr": "192.168.0.0/16", "nodeSelector": nodeSelector}})
	return b
}

func nodeJSON(name string, labels, annotations map[string]string) []byte {
	n := validatetest.Node(name, "10.1.0.9", "zone-0", "").CoreNode.DeepCopy()
	for k, v := range labels {
		n.Labels[k] = v
	}
	for k, v := range annotations {
		n.Annotations[k] = v
	}
	b, _ := json.Marshal(n)
	return b
}

func request(op admissionv1.Operation, kind metav1.GroupVersionKind, name string, obj, old []byte) *admissionv1.AdmissionRequest {
	req := &admissionv1.AdmissionRequest{UID: "u", Operation: op, Kind: kind, Name: name}
	req.Object.Raw, req.OldObject.Raw = obj, old
	return req
}

// seed is validatetest's seed-like cluster: 20 nodes, two reflectors, mesh off.
func seed(t testing.TB) *model.Snapshot {
	t.Helper()
	return model.NewSnapshot(calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 20, Reflectors: 2})))
}

// TestLimits: what is over a limit is answered before it is parsed, saying which object,
// field and limit; what is within them is judged as before.
func TestLimits(t *testing.T) {
	long := strings.Repeat("has(a) || ", 200) + "all()" // 2,005 characters
	nested := strings.Repeat("(", 100_000) + "all()" + strings.Repeat(")", 100_000)
	tokens := `{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPPeer","metadata":{"name":"p"},"spec":{"x":[` + strings.Repeat("1,", MaxObjectTokens) + `1]}}`
	cases := map[string]struct {
		req     *admissionv1.AdmissionRequest
		rules   map[string]validate.Action
		mode    Mode
		allowed bool
		want    []string // in the response's message, or (allowed) its warnings
	}{
		"an over-long peerSelector is a selector-syntax denial": {
			req:  request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", long), nil),
			want: []string{`rrguard refused BGPPeer "p" (selector-syntax): [selector-syntax] BGPPeer p: spec.peerSelector is 2005 characters long; Calico allows 1024`},
		},
		"both selectors over-long": {
			req:  request(admissionv1.Update, peerKind, "p", peerJSON("p", long, long), peerJSON("p", "all()", "all()")),
			want: []string{"spec.nodeSelector is 2005 characters long", "spec.peerSelector is 2005 characters long"},
		},
		"deeply nested, over-long: refused, never parsed": {
			req:  request(admissionv1.Create, peerKind, "p", peerJSON("p", nested, "all()"), nil),
			want: []string{"spec.nodeSelector is 200005 characters long; Calico allows 1024"},
		},
		"selector-syntax at warn: allowed with the warning, judged no further": {
			req: request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", long), nil), rules: map[string]validate.Action{validate.RuleSelectorSyntax: validate.Warn},
			allowed: true, want: []string{"[selector-syntax] BGPPeer p: spec.peerSelector is 2005 characters long"},
		},
		"selector-syntax off: allowed, judged no further": {
			req: request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", long), nil), rules: map[string]validate.Action{validate.RuleSelectorSyntax: validate.Off},
			allowed: true,
		},
		"the mutating pass leaves it to the validating pass": {
			req: request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", long), nil), mode: Mutating, allowed: true,
		},
		"a selector of 1,024 characters is judged": {
			req:  request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", strings.Repeat("has(x) || ", 101)+"has(abcdefghi)"), nil),
			want: []string{"selector-matches-nothing"}, allowed: true,
		},
		"an over-long old selector is not read: its repair is judged": {
			req:     request(admissionv1.Update, peerKind, "node-peer-to-rr", peerJSON("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)"), peerJSON("node-peer-to-rr", nested, "has(route-reflector)")),
			allowed: true,
		},
		"an over-long old selector is not read: a cut is still refused": {
			req:  request(admissionv1.Update, peerKind, "node-peer-to-rr", peerJSON("node-peer-to-rr", "has(nothing)", "has(route-reflector)"), peerJSON("node-peer-to-rr", nested, "has(route-reflector)")),
			want: []string{"route-propagation"},
		},
		"deleting a peer whose selector is over-long is judged": {
			req:  request(admissionv1.Delete, peerKind, "node-peer-to-rr", nil, peerJSON("node-peer-to-rr", nested, "has(route-reflector)")),
			want: []string{"route-propagation"},
		},
		"an over-long IPPool nodeSelector": {
			req:  request(admissionv1.Create, poolKind, "pool", poolJSON("pool", long), nil),
			want: []string{`rrguard refused IPPool "pool" (selector-syntax): [selector-syntax] IPPool pool: spec.nodeSelector is 2005 characters long; Calico allows 1024`},
		},
		"an over-long old IPPool nodeSelector is not read": {
			req:     request(admissionv1.Update, poolKind, "pool", poolJSON("pool", "all()"), poolJSON("pool", nested)),
			allowed: true,
		},
		"a label value over 63 characters": {
			req:  request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", map[string]string{"team": strings.Repeat("v", 64)}, nil), nodeJSON("node-00009", nil, nil)),
			want: []string{`rrguard could not read Node "node-00009": metadata.labels: label "team" has a value of 64 characters; Kubernetes allows 63`},
		},
		"a label key name over 63 characters": {
			req:  request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", map[string]string{"example.com/" + strings.Repeat("k", 64): "v"}, nil), nodeJSON("node-00009", nil, nil)),
			want: []string{"has a key name of 64 characters; Kubernetes allows 63"},
		},
		"a label key prefix over 253 characters": {
			req:  request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", map[string]string{strings.Repeat("p", 254) + "/k": "v"}, nil), nodeJSON("node-00009", nil, nil)),
			want: []string{"has a key prefix of 254 characters; Kubernetes allows 253"},
		},
		"a Calico label over the limit": {
			req:  request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", nil, map[string]string{calico.AnnotationLabels: `{"rack":"` + strings.Repeat("r", 100) + `"}`}), nodeJSON("node-00009", nil, nil)),
			want: []string{`metadata.annotations[projectcalico.org/labels]: label "rack" has a value of 100 characters; Kubernetes allows 63`},
		},
		"annotations over 256 KiB": {
			req:  request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", nil, map[string]string{"big": strings.Repeat("a", 256<<10)}), nodeJSON("node-00009", nil, nil)),
			want: []string{"metadata.annotations: annotations size 262187 is larger than limit 262144 (Kubernetes' limit)"},
		},
		"an object over 3 MiB": {
			req:  request(admissionv1.Create, peerKind, "p", peerJSON("p", "all()", strings.Repeat("x", MaxObjectSize)), nil),
			want: []string{`rrguard could not read BGPPeer "p": object: 3145860 bytes; rrguard reads objects of at most 3145728 bytes`},
		},
		"an old object over 3 MiB": {
			req:  request(admissionv1.Delete, peerKind, "p", nil, peerJSON("p", "all()", strings.Repeat("x", MaxObjectSize))),
			want: []string{"oldObject: 3145860 bytes"},
		},
		"an object of too many tokens": {
			req:  request(admissionv1.Create, peerKind, "p", []byte(tokens), nil),
			want: []string{fmt.Sprintf("object: %d JSON values and keys; rrguard reads objects of at most 100000", MaxObjectTokens+14)},
		},
		"a label change within the limits is judged": {
			req:     request(admissionv1.Update, nodeKind, "node-00009", nodeJSON("node-00009", map[string]string{"team": strings.Repeat("v", 63)}, nil), nodeJSON("node-00009", nil, nil)),
			allowed: true,
		},
	}
	before := seed(t)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := validate.DefaultConfig()
			cfg.Rules = c.rules
			r := &Reviewer{Engine: validate.New(cfg)}
			mode := c.mode
			if mode == MutateThenValidate {
				mode = Validating
			}
			start := time.Now()
			resp, _ := r.Respond(t.Context(), c.req, before, mode)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answered in %v: not bounded", took)
			}
			text := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				text = resp.Result.Message + "\n" + text
			}
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed = %v, want %v: %s", resp.Allowed, c.allowed, text)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("answer does not say %q:\n%s", w, validate.Truncate(text, 2000))
				}
			}
			if len(text) > 4000 {
				t.Errorf("an answer of %d bytes: it repeats the input", len(text))
			}
			if mode == Mutating && resp.Patch != nil {
				t.Errorf("patched an object over the limits: %s", resp.Patch)
			}
		})
	}
}

// TestOverLongSelectorNamesTheDenialsField: the denial carries the field path as a cause,
// as every selector-syntax finding does.
func TestOverLongSelectorNamesTheDenialsField(t *testing.T) {
	r := &Reviewer{Engine: validate.New(validate.DefaultConfig())}
	req := request(admissionv1.Create, metav1.GroupVersionKind{Group: calico.GroupV3, Version: "v3", Kind: calico.KindBGPPeer}, "p", nil, nil)
	req.Object.Raw = []byte(`{"apiVersion":"projectcalico.org/v3","kind":"BGPPeer","metadata":{"name":"p"},"spec":{"peerSelector":"` + strings.Repeat("a", 1025) + `"}}`)
	resp, findings := r.Respond(t.Context(), req, seed(t), Validating)
	if resp.Allowed || len(findings) != 1 || resp.Result.Details == nil || len(resp.Result.Details.Causes) != 1 {
		t.Fatalf("want one denial with one cause, got %+v", resp.Result)
	}
	f, cause := findings[0], resp.Result.Details.Causes[0]
	if f.Rule != validate.RuleSelectorSyntax || f.Action != validate.Deny || f.Field != "spec.peerSelector" || cause.Field != "spec.peerSelector" ||
		f.Object != (validate.ObjectRef{Kind: "BGPPeer", Group: calico.GroupV3, Name: "p"}) {
		t.Errorf("finding %+v, cause %+v", f, cause)
	}
}

// TestCostBoundsDecoding: the estimate Cost gives is at least what decoding the objects
// allocates, on the inputs that cost the most per byte and per token.
func TestCostBoundsDecoding(t *testing.T) {
	if raceDetector {
		t.Skip("under -race the detector's allocations are measured too; make test runs this without it")
	}
	const size = 1 << 20
	var labels strings.Builder
	for i := 0; labels.Len() < size; i++ {
		fmt.Fprintf(&labels, `"%x":"",`, i)
	}
	lab := "{" + strings.TrimSuffix(labels.String(), ",") + "}"
	peer := func(spec, meta string) []byte {
		return []byte(`{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPPeer","metadata":{"name":"p"` + meta + `},"spec":` + spec + `}`)
	}
	for name, raw := range map[string][]byte{
		"a long string":         peer(`{"peerSelector":"`+strings.Repeat("x", size)+`"}`, ""),
		"numbers":               peer(`{"x":[`+strings.Repeat("1,", MaxObjectTokens/2)+`1]}`, ""),
		"empty objects":         peer(`{"x":[`+strings.Repeat("{},", MaxObjectTokens/2)+`{}]}`, ""),
		"small objects":         peer(`{"x":[`+strings.Repeat(`{"a":1},`, MaxObjectTokens/4)+`{}]}`, ""),
		"a peer's labels":       peer(`{}`, `,"labels":`+lab[:strings.LastIndex(lab[:size/4], ",")]+"}"),
		"a Node's labels":       []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n","labels":` + lab[:strings.LastIndex(lab[:size/4], ",")] + `}}}`),
		"a Node's Calico label": []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"n","annotations":{"projectcalico.org/labels":` + fmt.Sprintf("%q", lab[:strings.LastIndex(lab[:size/8], ",")]+"}") + `}}}`),
	} {
		if n := jsonTokens(raw); n > MaxObjectTokens {
			t.Fatalf("%s: %d tokens, over the limit: the case measures nothing", name, n)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		o, err := decodeWithin(raw)
		runtime.ReadMemStats(&m1)
		if err != nil || o == nil {
			t.Fatalf("%s: %v", name, err)
		}
		allocated := int64(m1.TotalAlloc - m0.TotalAlloc)
		cost := Cost(&admissionv1.AdmissionRequest{Object: k8sruntime.RawExtension{Raw: raw}})
		t.Logf("%-22s %8d bytes %7d tokens: allocated %5.1f MB, Cost %5.1f MB", name, len(raw), jsonTokens(raw), float64(allocated)/1e6, float64(cost)/1e6)
		if allocated > cost {
			t.Errorf("%s: decoding allocated %d bytes, more than its Cost %d", name, allocated, cost)
		}
	}
}

func TestJSONTokens(t *testing.T) {
	for raw, want := range map[string]int{
		``:                                      0,
		`{}`:                                    1,
		`{"a":1}`:                               3,
		`{"a":[1, 2.5e3, true, null]}`:          7,
		`{"a\"b":"x,y:{[\\"}`:                   3,
		`[{"a":{}},{"b":[]}, "s", -1]`:          9,
		" {\n\t\"k\" : \"v\" \r\n} ":            3,
		`["\u00e9\\", "]"]`:                     3,
		`{"a":"` + "\\\\\\\"" + `x"}`:           3,
		`{"labels":"{\"a\":\"b\",\"c\":\"\"}"}`: 7,
	} {
		if got := jsonTokens([]byte(raw)); got != want {
			t.Errorf("jsonTokens(%s) = %d, want %d", raw, got, want)
		}
	}
}

// TestJudges: the webhook answers the kinds decision.go's checked lists, and no other.
func TestJudges(t *testing.T) {
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Node"},
		{Group: calico.GroupCRD, Version: "v1", Kind: "BGPPeer"},
		{Group: calico.GroupCRD, Version: "v1", Kind: "BGPConfiguration"},
		{Group: calico.GroupV3, Version: "v3", Kind: "Node"},
		{Group: calico.GroupV3, Version: "v3", Kind: "BGPPeer"},
		{Group: calico.GroupV3, Version: "v3", Kind: "BGPConfiguration"},
		{Group: calico.GroupCRD, Version: "v1", Kind: "BGPFilter"},
		{Group: calico.GroupV3, Version: "v3", Kind: "BGPFilter"},
		{Group: calico.GroupCRD, Version: "v1", Kind: "IPPool"},
		{Group: calico.GroupV3, Version: "v3", Kind: "IPPool"},
	} {
		if !Judges(metav1.GroupVersionKind(gvk)) {
			t.Errorf("%s is not judged", gvk)
		}
	}
	for _, gvk := range []schema.GroupVersionKind{
		{}, {Version: "v1", Kind: "Pod"}, {Group: calico.GroupCRD, Version: "v1", Kind: "Node"}, {Group: "example.com", Version: "v1", Kind: "BGPPeer"},
		{Group: calico.GroupCRD, Version: "v1", Kind: "BlockAffinity"},
	} {
		if Judges(metav1.GroupVersionKind(gvk)) {
			t.Errorf("%s is judged", gvk)
		}
	}
}
