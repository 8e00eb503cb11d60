// Package conformance checks rrguard's session model against Calico's own confd test suite:
// for every mesh and explicit-peering scenario of the pinned github.com/projectcalico/calico
// module, `rrguard sessions -o json` for the node confd rendered must list exactly the
// `protocol bgp` sessions of the golden bird.cfg / bird6.cfg. The fixtures are read from the
// module cache, never copied into this repository.
package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rrguard/rrguard/test/harness"
)

var (
	// rrguardBin is the rrguard binary built once for every scenario.
	rrguardBin string
	// confdTests is confd/tests of the pinned calico module.
	confdTests string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/conformance:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := harness.FindRoot()
	if err != nil {
		return 0, err
	}
	dir, err := harness.ModuleDir(root, "github.com/projectcalico/calico")
	if err != nil {
		return 0, fmt.Errorf("locate the pinned calico module: %w", err)
	}
	confdTests = filepath.Join(dir, "confd", "tests")
	if _, err := os.Stat(confdTests); err != nil {
		return 0, fmt.Errorf("the pinned calico module has no confd test suite: %w", err)
	}
	tmp, err := os.MkdirTemp("", "rrguard-conformance-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if rrguardBin, err = harness.Build(root, "./cmd/rrguard", tmp); err != nil {
		return 0, fmt.Errorf("build rrguard: %w", err)
	}
	return m.Run(), nil
}
