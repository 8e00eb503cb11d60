// Package conformance checks rrguard's session model against Calico's own confd test suite:
// for every mesh and explicit-peering scenario of the pinned github.com/projectcalico/calico
// module, `rrguard sessions -o json` for the node confd rendered must list exactly the
// `protocol bgp` sessions of the golden bird.cfg / bird6.cfg. The fixtures are read from the
// module cache, never copied into this repository.
package conformance

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	root, err := goOutput("", "env", "GOMOD")
	if err != nil || root == "" || root == os.DevNull {
		return 0, fmt.Errorf("find the repository's go.mod: %v (run inside the rrguard module)", err)
	}
	root = filepath.Dir(root)
	// The module is pinned in go.mod; GONOSUMDB as the Makefile sets it, so that a fresh
	// clone can download it.
	dir, err := goOutput(root, "list", "-m", "-f", "{{.Dir}}", "github.com/projectcalico/calico")
	if err != nil {
		return 0, fmt.Errorf("locate the pinned calico module: %w", err)
	}
	if dir == "" {
		if _, err := goOutput(root, "mod", "download", "github.com/projectcalico/calico"); err != nil {
			return 0, fmt.Errorf("download the pinned calico module: %w", err)
		}
		if dir, err = goOutput(root, "list", "-m", "-f", "{{.Dir}}", "github.com/projectcalico/calico"); err != nil || dir == "" {
			return 0, fmt.Errorf("locate the pinned calico module after download: %v", err)
		}
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
	rrguardBin = filepath.Join(tmp, "rrguard")
	if _, err := goOutput(root, "build", "-o", rrguardBin, "./cmd/rrguard"); err != nil {
		return 0, fmt.Errorf("build rrguard: %w", err)
	}
	return m.Run(), nil
}

// goOutput runs the go command in dir and returns its trimmed standard output.
func goOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GONOSUMDB=github.com/projectcalico")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
