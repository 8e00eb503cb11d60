//go:build e2e

// Package plugin proves `kubectl rrguard` the way a user gets it: the release archives of
// `make dist` (hack/dist.sh) built for this machine, the plugin installed from the krew
// manifest as krew installs it, and kubectl's own plugin mechanism (the control plane's
// bin/kubectl, the plugin on the PATH) running it against the test API server.
package plugin

import (
	"os"
	"testing"

	"github.com/rrguard/rrguard/test/harness"
)

var h *harness.Harness

func TestMain(m *testing.M) {
	code := harness.Main(m, harness.Options{}, &h)
	if dist.dir != "" {
		_ = os.RemoveAll(dist.dir)
	}
	os.Exit(code)
}
