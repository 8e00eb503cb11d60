//go:build e2e

package deploy

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The image's binaries, built once per test run the way the Dockerfile builds them.
var image struct {
	once    sync.Once
	scratch string // removed by TestMain
	dir     string // holds webhook and rrguard
	version string
	took    time.Duration
	err     error
}

// imageBinaries builds the image's binaries: the Docker build context (the repository less
// what .dockerignore excludes, filtered by Docker's own pattern matcher) copied to a scratch
// directory, and there the Dockerfile's build step, hack/build.sh, run with its environment.
func imageBinaries(t *testing.T) (dir, version string) {
	t.Helper()
	image.once.Do(func() {
		start := time.Now()
		image.version = fmt.Sprintf("v0.0.0-deploytest.%d", start.Unix())
		image.scratch, image.err = os.MkdirTemp("", "rrguard-image-")
		if image.err == nil {
			image.dir, image.err = buildFromContext(image.scratch, image.version)
		}
		image.took = time.Since(start)
	})
	if image.err != nil {
		t.Fatal(image.err)
	}
	return image.dir, image.version
}

func buildFromContext(scratch, version string) (string, error) {
	context := filepath.Join(scratch, "src")
	if err := copyBuildContext(h.RootDir, context); err != nil {
		return "", err
	}
	out := filepath.Join(scratch, "out")
	cmd := exec.Command(filepath.Join(context, "hack", "build.sh"), out, version)
	cmd.Dir = context
	// The golang image's environment plus the Dockerfile's ENV and the per-platform GOOS/GOARCH:
	// no GOFLAGS or CGO settings of the caller.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "CGO_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "GOTOOLCHAIN=local", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("hack/build.sh in the Docker build context: %v\n%s", err, output)
	}
	return out, nil
}

// copyBuildContext copies what `docker build .` sends: every file .dockerignore does not
// exclude, by the rules of github.com/moby/patternmatcher (Docker's and BuildKit's).
func copyBuildContext(root, dst string) error {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." || !d.Type().IsRegular() {
			return err
		}
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil || excluded {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm())
	})
}

// dockerfile is the Dockerfile's instructions, continuation lines joined, comments dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(h.RootDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if l, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestDockerfileBuildsWithTheTestedRecipe: the Dockerfile's build stage is hack/build.sh on a
// golang image of go.mod's Go version, and the final stage is distroless static:nonroot with
// both binaries, the webhook as entrypoint, a non-root user.
func TestDockerfileBuildsWithTheTestedRecipe(t *testing.T) {
	lines := dockerfile(t)
	gomod, err := os.ReadFile(filepath.Join(h.RootDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^ARG GO_VERSION=` + regexp.QuoteMeta(string(goVersion[1])) + `$`),
		regexp.MustCompile(`^FROM (--platform=\S+ )?golang:\$\{GO_VERSION\} AS build$`),
		regexp.MustCompile(`^RUN GOOS=\$\{TARGETOS\} GOARCH=\$\{TARGETARCH\} hack/build.sh /out "\$\{VERSION\}"$`),
		regexp.MustCompile(`^FROM gcr.io/distroless/static:nonroot$`),
		regexp.MustCompile(`^COPY --from=build /out/webhook /out/rrguard /$`),
		regexp.MustCompile(`^USER 65532:65532$`),
		regexp.MustCompile(`^ENTRYPOINT \["/webhook"\]$`),
	}
	i := 0
	for _, l := range lines {
		if i < len(want) && want[i].MatchString(l) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("Dockerfile: no instruction matching %s (in this order):\n%s", want[i], strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			t.Errorf("Dockerfile runs go build itself (%q): build through hack/build.sh, which this test runs", l)
		}
	}
}

// TestImageBinaries: built from the Docker build context by hack/build.sh, both binaries are
// static (nothing for a distroless image to lack) and carry the version.
func TestImageBinaries(t *testing.T) {
	dir, version := imageBinaries(t)
	t.Logf("both binaries built from the Docker build context in %v", image.took.Round(time.Second))
	for _, name := range []string{"webhook", "rrguard"} {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (has an ELF interpreter)", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v", name, libs)
		}
		f.Close()
	}
	out, err := exec.Command(filepath.Join(dir, "rrguard"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("rrguard --version: %s (%v), want %s", out, err, version)
	}
	// The webhook logs its version on start: TestInstall runs it and checks.
}
