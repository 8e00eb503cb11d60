// Package e2e holds rrguard's live tests: a real etcd and kube-apiserver (bin/, built by
// `make controlplane`) with the Calico CRDs, started once for the package.
package e2e

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
