// Package audit reports what is already wrong in the cluster: it runs the engine's Audit over
// the cached topology periodically and shortly after changes, and publishes the findings as a
// cluster-scoped report (OpenReports ClusterReport or wg-policy ClusterPolicyReport),
// Prometheus metrics and Kubernetes Events.
package audit

import (
	"fmt"
	"strings"
	"time"

	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The report APIs.
const (
	ReportOpenReports = "openreports"
	ReportWGPolicy    = "wgpolicy"
)

// ReportGVK returns the kind of the report for an API.
func ReportGVK(api string) (schema.GroupVersionKind, error) {
	switch api {
	case "", ReportOpenReports:
		return schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "ClusterReport"}, nil
	case ReportWGPolicy:
		return schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "ClusterPolicyReport"}, nil
	}
	return schema.GroupVersionKind{}, fmt.Errorf("report API %q: use %s or %s", api, ReportOpenReports, ReportWGPolicy)
}

// Annotations rrguard sets on its report.
const (
	AnnotationTruncated = "rrguard.io/truncated"
	AnnotationLastRun   = "rrguard.io/last-run"
	// Source is the results' source.
	Source = "rrguard"
	// MaxMessage is the longest message, in bytes, kept in a report result or an Event.
	MaxMessage = 1024
)

// BuildReport renders findings as the content of a report: the results (at most maxResults;
// beyond that the report says it is truncated) and the summary, which always counts every
// finding. name is the report's name.
func BuildReport(api, name string, findings []validate.Finding, maxResults int, now time.Time) (*unstructured.Unstructured, error) {
	gvk, err := ReportGVK(api)
	if err != nil {
		return nil, err
	}
	sorted := report.ByAction(findings)
	r := openreports.ClusterReport{
		TypeMeta:      metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
		ObjectMeta:    metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": Source}},
		Source:        Source,
		Configuration: &openreports.ReportConfiguration{Limits: openreports.Limits{MaxResults: maxResults}},
	}
	failing := map[string]bool{}
	ts := metav1.Timestamp{Seconds: now.Unix()}
	for i, f := range sorted {
		failing[f.Rule] = true
		result, severity := "warn", "medium"
		switch f.Action {
		case validate.Deny:
			result, severity = "fail", "high"
			r.Summary.Fail++
		case validate.Audit:
			severity = "low"
			r.Summary.Warn++
		default:
			r.Summary.Warn++
		}
		if i >= maxResults {
			continue
		}
		res := openreports.ReportResult{
			Source: Source, Policy: f.Rule, Result: openreports.Result(result), Severity: openreports.ResultSeverity(severity),
			Timestamp: ts, Description: validate.Truncate(f.Message, MaxMessage), Scored: true,
			Subjects:   []corev1.ObjectReference{objectReference(f.Object)},
			Properties: map[string]string{"action": string(f.Action)},
		}
		if f.Field != "" {
			res.Properties["field"] = f.Field
		}
		r.Results = append(r.Results, res)
	}
	for _, rule := range validate.Rules {
		if !failing[rule.ID] {
			r.Summary.Pass++
		}
	}
	r.Annotations = map[string]string{AnnotationLastRun: now.UTC().Format(time.RFC3339)}
	if len(sorted) > maxResults {
		r.Annotations[AnnotationTruncated] = fmt.Sprintf("%d of %d results shown; the summary counts all; run `rrguard audit` for the full list", maxResults, len(sorted))
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&r)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	if api == ReportWGPolicy {
		// The wg-policy schema has no source or configuration at the top level.
		delete(u.Object, "source")
		delete(u.Object, "configuration")
	}
	return u, nil
}

func objectReference(r validate.ObjectRef) corev1.ObjectReference {
	ref := corev1.ObjectReference{Kind: r.Kind, Name: r.Name}
	switch r.Group {
	case calico.GroupCore:
		ref.APIVersion = "v1"
	case calico.GroupCRD:
		ref.APIVersion = calico.GroupCRD + "/v1"
	case calico.GroupV3:
		ref.APIVersion = calico.GroupV3 + "/v3"
	default:
		ref.APIVersion = r.Group
	}
	return ref
}

// reason turns a rule ID into an Event reason (UpperCamelCase).
func reason(rule string) string {
	var b strings.Builder
	for _, part := range strings.Split(rule, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
