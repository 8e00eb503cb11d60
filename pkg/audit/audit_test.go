package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rrguard/rrguard/pkg/validate"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
)

func findings(n int) []validate.Finding {
	var out []validate.Finding
	for i := 0; i < n; i++ {
		a := validate.Warn
		if i%2 == 0 {
			a = validate.Deny
		}
		out = append(out, validate.Finding{Rule: validate.RuleRoutePropagation, Action: a,
			Object: validate.ObjectRef{Kind: "Node", Name: "n" + strings.Repeat("x", i%3)}, Message: strings.Repeat("é", 1000)}) // 2000 bytes of two-byte characters
	}
	return out
}

func TestBuildReport(t *testing.T) {
	now := time.Unix(1700000000, 0)
	u, err := BuildReport(ReportOpenReports, "rrguard", findings(7), 5, now)
	if err != nil {
		t.Fatal(err)
	}
	results, _, _ := unstructured.NestedSlice(u.Object, "results")
	if len(results) != 5 {
		t.Errorf("%d results, want the cap of 5", len(results))
	}
	fail, _, _ := unstructured.NestedInt64(u.Object, "summary", "fail")
	warn, _, _ := unstructured.NestedInt64(u.Object, "summary", "warn")
	if fail != 4 || warn != 3 {
		t.Errorf("summary fail=%d warn=%d, want 4 and 3 (all findings, not only those shown)", fail, warn)
	}
	if !strings.Contains(u.GetAnnotations()[AnnotationTruncated], "5 of 7") {
		t.Errorf("truncation not signalled: %v", u.GetAnnotations())
	}
	first := results[0].(map[string]interface{})
	if first["result"] != "fail" || first["policy"] != validate.RuleRoutePropagation || len(first["message"].(string)) > MaxMessage {
		t.Errorf("first result %v", first)
	}
	if msg := first["message"].(string); !utf8.ValidString(msg) || !strings.HasSuffix(msg, "…") {
		t.Errorf("a cut message must stay valid UTF-8 and end in …: %q", msg[len(msg)-8:])
	}
	if u.GetKind() != "ClusterReport" || u.GetAPIVersion() != "openreports.io/v1alpha1" || u.Object["source"] != Source {
		t.Errorf("report kind %s %s source %v", u.GetAPIVersion(), u.GetKind(), u.Object["source"])
	}
	raw, _ := json.Marshal(u.Object)
	if len(raw) > 1<<20 {
		t.Errorf("report of %d bytes", len(raw))
	}

	w, err := BuildReport(ReportWGPolicy, "rrguard", findings(1), 5, now)
	if err != nil {
		t.Fatal(err)
	}
	if w.GetKind() != "ClusterPolicyReport" || w.GetAPIVersion() != "wgpolicyk8s.io/v1alpha2" {
		t.Errorf("wgpolicy report %s %s", w.GetAPIVersion(), w.GetKind())
	}
	if _, ok := w.Object["source"]; ok {
		t.Error("the wg-policy schema has no top-level source")
	}
	if _, err := BuildReport("nope", "x", nil, 5, now); err == nil {
		t.Error("unknown report API accepted")
	}
}

func TestReason(t *testing.T) {
	for in, want := range map[string]string{"route-propagation": "RoutePropagation", "as-number": "AsNumber", "mesh-disable-needs-reflectors": "MeshDisableNeedsReflectors"} {
		if got := reason(in); got != want {
			t.Errorf("reason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEventsAreDeduplicatedAndCapped(t *testing.T) {
	rec := events.NewFakeRecorder(100)
	a, err := New(validate.New(validate.Config{}), nil, nil, rec, Options{MaxEvents: 3})
	if err != nil {
		t.Fatal(err)
	}
	fs := findings(5)
	for i := range fs {
		fs[i].Message = "finding " + string(rune('a'+i))
	}
	a.emitEvents(fs)
	if n := len(rec.Events); n != 3 {
		t.Errorf("%d events in the first run, want the cap of 3", n)
	}
	drain(rec)
	a.emitEvents(fs)
	if n := len(rec.Events); n != 2 {
		t.Errorf("%d events in the second run, want the 2 not yet told", n)
	}
	drain(rec)
	a.emitEvents(fs)
	if n := len(rec.Events); n != 0 {
		t.Errorf("%d events repeated within the hour", n)
	}
	a.emitEvents(nil) // all fixed
	a.emitEvents(fs[:1])
	if n := len(rec.Events); n != 1 {
		t.Errorf("a finding that came back was not announced again (%d events)", n)
	}
}

func drain(rec *events.FakeRecorder) {
	for len(rec.Events) > 0 {
		<-rec.Events
	}
}
