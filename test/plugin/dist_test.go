//go:build e2e

package plugin

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// distVersion is the release the tests build.
const distVersion = "v0.0.0-plugintest"

// The archives of hack/dist.sh, built once per test run.
var dist struct {
	once sync.Once
	dir  string
	took time.Duration
	out  string
	err  error
}

func distDir(t *testing.T) string {
	t.Helper()
	dist.once.Do(func() {
		start := time.Now()
		if dist.dir, dist.err = os.MkdirTemp("", "rrguard-dist-"); dist.err != nil {
			return
		}
		cmd := exec.Command(filepath.Join(h.RootDir, "hack", "dist.sh"), dist.dir, distVersion)
		cmd.Env = append(os.Environ(), "PLATFORMS="+hostPlatform(), "RELEASE_URL=https://example.invalid/releases/"+distVersion)
		out, err := cmd.CombinedOutput()
		dist.out = string(out)
		if err != nil {
			dist.err = fmt.Errorf("hack/dist.sh: %v\n%s", err, out)
		}
		dist.took = time.Since(start)
	})
	if dist.err != nil {
		t.Fatal(dist.err)
	}
	return dist.dir
}

func archiveName(prefix, platform string) string {
	os, arch, _ := strings.Cut(platform, "/")
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", prefix, distVersion, os, arch)
}

func hostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// untar extracts a .tar.gz into dir and returns the names it held, in order.
func untar(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.Contains(hdr.Name, "/") {
			t.Fatalf("%s: %s is not a regular file at the top (type %c)", filepath.Base(archive), hdr.Name, hdr.Typeflag)
		}
		if hdr.Mode&0o111 == 0 {
			t.Errorf("%s: %s is not executable (mode %o)", filepath.Base(archive), hdr.Name, hdr.Mode)
		}
		names = append(names, hdr.Name)
		if dir == "" {
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, hdr.Name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode).Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// TestDistArchives: `make dist`'s script (here for this machine's platform only: the other three
// are cross-compilations of the same sources) builds both archives, with exactly
// the files a user installs, checksums.txt verifies each, and the binaries say their release.
func TestDistArchives(t *testing.T) {
	dir := distDir(t)
	t.Logf("hack/dist.sh for %s: %v", hostPlatform(), dist.took.Round(time.Second))

	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt: %q is not sha256sum's format", sc.Text())
		}
		sums[name] = sum
	}
	f.Close()

	want := map[string][]string{"rrguard": {"rrguard"}, "kubectl-rrguard": {"kubectl-rrguard", "kubectl_complete-rrguard"}}
	for prefix, files := range want {
		name := archiveName(prefix, hostPlatform())
		path := filepath.Join(dir, name)
		if got := untar(t, path, ""); !slices.Equal(got, files) {
			t.Errorf("%s holds %v, want %v", name, got, files)
		}
		if sums[name] != sha256File(t, path) {
			t.Errorf("checksums.txt: %s has %q, the archive's sha256 is %s", name, sums[name], sha256File(t, path))
		}
		delete(sums, name)
	}
	if len(sums) > 0 {
		t.Errorf("checksums.txt names archives that were not built: %v", sums)
	}

	bin := t.TempDir()
	untar(t, filepath.Join(dir, archiveName("rrguard", hostPlatform())), bin)
	out, err := exec.Command(filepath.Join(bin, "rrguard"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("rrguard version: %v\n%s", err, out)
	}
	wantLines := []string{"rrguard " + distVersion, "models:   Calico v3.31.0"}
	if head, err := exec.Command("git", "-C", h.RootDir, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		wantLines = append(wantLines, "commit:   "+strings.TrimSpace(string(head)))
	}
	for _, w := range wantLines {
		if !strings.Contains(string(out), w+"\n") {
			t.Errorf("rrguard version from the archive: no line %q:\n%s", w, out)
		}
	}
}

// krewManifest is the part of krew's Plugin (krew.googlecontainertools.github.com/v1alpha2)
// that krew reads to install.
type krewManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

func readKrewManifest(t *testing.T) krewManifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(distDir(t), "rrguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m krewManifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("dist/rrguard.yaml: %v\n%s", err, raw)
	}
	return m
}

// installWithKrew installs the plugin for this machine from the krew manifest as `kubectl krew
// install --manifest` does: the platform whose selector matches, its archive checked against
// the manifest's sha256 and extracted, its files moved into the plugin's directory, and a link
// named kubectl-<name> to its bin in the returned directory, which goes on the PATH.
func installWithKrew(t *testing.T) (pathDir, store string) {
	t.Helper()
	m := readKrewManifest(t)
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "rrguard" {
		t.Fatalf("dist/rrguard.yaml is not krew's Plugin rrguard: %s %s %s", m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if m.Spec.Version != distVersion || m.Spec.ShortDescription == "" {
		t.Errorf("dist/rrguard.yaml: version %q, short description %q", m.Spec.Version, m.Spec.ShortDescription)
	}
	var matched []int
	for i, p := range m.Spec.Platforms {
		if p.Selector.MatchLabels["os"] == runtime.GOOS && p.Selector.MatchLabels["arch"] == runtime.GOARCH {
			matched = append(matched, i)
		}
	}
	if len(m.Spec.Platforms) != 1 || len(matched) != 1 {
		t.Fatalf("dist/rrguard.yaml: %d platforms, %d for %s; want one per platform built", len(m.Spec.Platforms), len(matched), hostPlatform())
	}
	p := m.Spec.Platforms[matched[0]]
	archive := filepath.Join(distDir(t), archiveName("kubectl-rrguard", hostPlatform()))
	if p.URI != "https://example.invalid/releases/"+distVersion+"/"+filepath.Base(archive) {
		t.Errorf("dist/rrguard.yaml: uri %s, want RELEASE_URL/%s", p.URI, filepath.Base(archive))
	}
	if got := sha256File(t, archive); p.SHA256 != got {
		t.Fatalf("dist/rrguard.yaml: sha256 %s, the archive's is %s: krew would refuse it", p.SHA256, got)
	}
	unpacked, store := t.TempDir(), t.TempDir()
	untar(t, archive, unpacked)
	for _, f := range p.Files {
		matches, err := filepath.Glob(filepath.Join(unpacked, f.From))
		if err != nil || len(matches) == 0 {
			t.Fatalf("dist/rrguard.yaml: files.from %q matches nothing in the archive", f.From)
		}
		for _, src := range matches {
			if err := os.Rename(src, filepath.Join(store, f.To, filepath.Base(src))); err != nil {
				t.Fatal(err)
			}
		}
	}
	pathDir = t.TempDir()
	if err := os.Symlink(filepath.Join(store, p.Bin), filepath.Join(pathDir, "kubectl-rrguard")); err != nil {
		t.Fatal(err)
	}
	return pathDir, store
}
