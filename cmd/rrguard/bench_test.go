package main

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// BenchmarkValidateManifests is `rrguard validate -f` on 100,000 core/v1 Node documents, the
// command a user runs, as a process of its own (its heap floor included): it reports the
// peak resident memory of the process too.
func BenchmarkValidateManifests(b *testing.B) {
	dir := validatetest.NodeManifests(b, 100000)
	bin := filepath.Join(b.TempDir(), "rrguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var peak int64
	validate := func() {
		cmd := exec.Command(bin, "validate", "-f", dir, "-o", "json")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("rrguard validate: %v\n%.2000s", err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, ru.Maxrss) // KiB on Linux
		}
	}
	validate() // untimed: the binary and the files just written read once, as for its floor
	for b.Loop() {
		validate()
	}
	b.ReportMetric(float64(peak)/1024, "MiB-peak-RSS")
}

// BenchmarkValidateManifestsFloor is BenchmarkValidateManifests' floor: the same files read
// and every document parsed once into a generic value by go.yaml.in/yaml/v2, on every core,
// and nothing more.
func BenchmarkValidateManifestsFloor(b *testing.B) {
	dir := validatetest.NodeManifests(b, 100000)
	parse := func() {
		if n, err := validatetest.ParseManifests(dir); err != nil || n < 100000 {
			b.Fatalf("%d documents: %v", n, err)
		}
	}
	parse() // untimed, as BenchmarkValidateManifests' first run
	for b.Loop() {
		parse()
	}
}
