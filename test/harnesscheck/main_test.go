//go:build e2e

// Package harnesscheck checks the instruments of the live tests, not rrguard: rrguard never runs
// here. Against the control plane the harness starts (a real etcd and kube-apiserver from bin/,
// built by `make controlplane`, with the Calico CRDs) it shows that the pinned binaries and CRDs
// are those rrguard is tested against, what the API server and calicoctl refuse on their own, that
// every scenario round-trips with no webhook, and, with admission policies and a probe webhook
// standing in for rrguard, that the scenario player (internal/scenario/live) reports refusals,
// rule IDs and warnings as kubectl and calicoctl print them.
package harnesscheck

import (
	"os"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rrguard/rrguard/test/harness"
)

// h is the control plane shared by every test of the package.
var h *harness.Harness

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{Webhooks: envtest.WebhookInstallOptions{
		ValidatingWebhooks: []*admissionv1.ValidatingWebhookConfiguration{probeWebhookConfiguration()},
	}}, &h))
}
