//go:build e2e

package harnesscheck

import (
	"context"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
)

// probeLabel marks the ConfigMaps the probe webhook judges; nothing else is sent to it.
const probeLabel = "rrguard-harnesscheck/webhook-probe"

// probeWebhookConfiguration registers a webhook the way a rrguard webhook test will: a service
// reference, which envtest rewrites to https://127.0.0.1:<port>/<path> with its own CA.
func probeWebhookConfiguration() *admissionv1.ValidatingWebhookConfiguration {
	path, fail, none := "/probe", admissionv1.Fail, admissionv1.SideEffectClassNone
	return &admissionv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "rrguard-harnesscheck-probe"},
		Webhooks: []admissionv1.ValidatingWebhook{{
			Name:                    "probe.rrguard.harnesscheck",
			ClientConfig:            admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Namespace: "default", Name: "probe", Path: &path}},
			Rules:                   []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update}, Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{probeLabel: "true"}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr(int32(5)),
		}},
	}
}

func ptr[T any](v T) *T { return &v }

// TestWebhookPath serves a webhook from the test process on the host, port and certificates
// envtest allocated (Harness.Env.WebhookInstallOptions) and shows that the API server calls
// it, and that the runner reports its denial and warnings.
func TestWebhookPath(t *testing.T) {
	w := h.Env.WebhookInstallOptions
	server := webhook.NewServer(webhook.Options{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir})
	server.Register("/probe", &webhook.Admission{Handler: admission.HandlerFunc(
		func(_ context.Context, req admission.Request) admission.Response {
			if req.Name == "deny-me" {
				return admission.Denied("[route-propagation] the probe webhook refuses deny-me")
			}
			return admission.Allowed("").WithWarnings("[reflector-redundancy] the probe webhook warns about " + req.Name)
		})})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Start(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); server.StartedChecker()(nil) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("webhook server on %s:%d did not start", w.LocalServingHost, w.LocalServingPort)
		}
	}

	runner := &live.Runner{H: h}
	for _, c := range []struct {
		name, expect   string
		deny, warnings []string
	}{
		{name: "allow-me", expect: "allow", warnings: []string{"reflector-redundancy"}},
		{name: "deny-me", expect: "deny", deny: []string{"route-propagation"}},
	} {
		st := scenario.Step{
			Name: c.name, Do: "apply", Expect: c.expect, Deny: c.deny, Warnings: c.warnings,
			Object: object(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: `+c.name+`, namespace: default, labels: {`+probeLabel+`: "true"}}, data: {a: b}}`),
		}
		o, err := runner.Step(ctx, 1, st)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range live.Check(o) {
			t.Errorf("%s: %s", c.name, d)
		}
		t.Logf("%s: %s: allowed=%v message=%q warnings=%q", c.name, o.Command, o.Allowed, o.Message, o.Warnings)
	}
}
