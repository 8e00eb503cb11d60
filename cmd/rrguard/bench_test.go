package main

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// benchNodes is the size of the CLI's benchmarks: the largest cluster Kubernetes supports.
const benchNodes = 5000

// manifestForms are the inputs of the CLI's benchmarks: benchNodes core/v1 Node documents,
// and the same Nodes as `kubectl get nodes -o yaml` exports them (one List, with the
// kubelet's status), each with the seed's two BGPPeers.
var manifestForms = []struct {
	name string
	dir  func(testing.TB, int) string
	docs int // documents in the files at least
}{
	{"documents", validatetest.NodeManifests, benchNodes},
	{"kubectl-export", validatetest.NodeList, 1},
}

// BenchmarkValidateManifests is `rrguard validate -f` on each of manifestForms, the command a
// user runs, as a process of its own: it reports the peak resident memory of the process too.
func BenchmarkValidateManifests(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "rrguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, form := range manifestForms {
		b.Run(form.name, func(b *testing.B) {
			dir := form.dir(b, benchNodes)
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
		})
	}
}

// BenchmarkValidateManifestsFloor is BenchmarkValidateManifests' floor: the same files read
// and every document parsed once into a generic value by go.yaml.in/yaml/v2, on every core,
// and nothing more.
func BenchmarkValidateManifestsFloor(b *testing.B) {
	for _, form := range manifestForms {
		b.Run(form.name, func(b *testing.B) {
			dir := form.dir(b, benchNodes)
			parse := func() {
				if n, err := validatetest.ParseManifests(dir); err != nil || n < form.docs {
					b.Fatalf("%d documents: %v", n, err)
				}
			}
			parse() // untimed, as BenchmarkValidateManifests' first run
			for b.Loop() {
				parse()
			}
		})
	}
}
