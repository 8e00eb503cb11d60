// Package controlplane tests hack/controlplane/build.sh: which way it gets each binary.
package controlplane

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stubGo stands in for go: `build … -o OUT PKG` writes OUT, a script that prints every version
// the script checks for; with fail set, any call fails (the source build must not run).
func stubGo(t *testing.T, dir string, fail bool) string {
	t.Helper()
	script := `#!/bin/sh
case $1 in
build)
	while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
	printf '#!/bin/sh\necho "Kubernetes v1.37.2 / Client Version: v1.37.2 / etcd Version: 3.6.16 / Client Version:    v3.31.0 / confd v3.31.0 / Version:      v3.31.0"\n' >"$out"
	chmod +x "$out"
	echo stub/package ;;
version) echo "go version stub" ;;
*) echo "stub go: $*" >&2; exit 1 ;;
esac
`
	if fail {
		script = "#!/bin/sh\necho \"stub go must not run: $*\" >&2\nexit 1\n"
	}
	path := filepath.Join(dir, "go")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs build.sh --bin DIR/bin with names and the environment env, and returns its output
// and how long it took.
func run(t *testing.T, dir string, env []string, names ...string) (string, time.Duration) {
	t.Helper()
	cmd := exec.Command("./build.sh", append([]string{"--bin", filepath.Join(dir, "bin")}, names...)...)
	cmd.Env = append(os.Environ(), append([]string{"XDG_CACHE_HOME=" + filepath.Join(dir, "cache")}, env...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh %s: %v\n%s", strings.Join(names, " "), err, out)
	}
	return string(out), time.Since(start)
}

func linkOf(t *testing.T, dir, name string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, "bin", name))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// TestFallbackToSourceBuild: downloads that fail at once (a closed port, an address that does
// not answer within the connect timeout) lead to the source build within seconds.
func TestFallbackToSourceBuild(t *testing.T) {
	dir := t.TempDir()
	out, took := run(t, dir, []string{
		"GO=" + stubGo(t, dir, false),
		"ENVTEST_INDEX_URL=http://127.0.0.1:1/envtest-releases.yaml",
		"CALICOCTL_URL=http://192.0.2.1/calicoctl", // TEST-NET-1: never answers
		"DOWNLOAD_CONNECT_TIMEOUT=1",
	}, "kube-apiserver", "etcd", "calicoctl")
	if strings.Count(out, "download failed") != 2 || strings.Count(out, ": building ") != 3 {
		t.Errorf("want two failed downloads (envtest tried once), then three source builds:\n%s", out)
	}
	for _, name := range []string{"kube-apiserver", "etcd", "calicoctl"} {
		if got := linkOf(t, dir, name); !strings.Contains(got, filepath.Join("controlplane", name+"-")) {
			t.Errorf("bin/%s -> %s, want the source build", name, got)
		}
	}
	// Three stub builds each take a second of polling; the downloads must add little to that.
	if took > 15*time.Second {
		t.Errorf("took %s, want the fallback within seconds:\n%s", took, out)
	}
}

// TestPrebuiltCalicoctl: a calicoctl that can be downloaded is used, and nothing is built.
func TestPrebuiltCalicoctl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("build.sh downloads with curl: apt-get install curl")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("#!/bin/sh\necho 'Client Version:    v3.31.0'\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	out, _ := run(t, dir, []string{"GO=" + stubGo(t, dir, true), "CALICOCTL_URL=" + srv.URL + "/calicoctl-linux-amd64"}, "calicoctl")
	if !strings.Contains(out, "==> calicoctl: prebuilt") {
		t.Errorf("no prebuilt calicoctl:\n%s", out)
	}
	if got := linkOf(t, dir, "calicoctl"); !strings.Contains(got, filepath.Join("prebuilt-v3.31.0", "calicoctl")) {
		t.Errorf("bin/calicoctl -> %s, want the downloaded one", got)
	}
	// Downloaded once: the next run uses the cached file even when the release is gone.
	srv.Close()
	if out, _ := run(t, dir, []string{"GO=" + stubGo(t, dir, true), "CALICOCTL_URL=" + srv.URL + "/calicoctl-linux-amd64"}, "calicoctl"); strings.Contains(out, "trying") {
		t.Errorf("second run downloads again:\n%s", out)
	}
}

// TestCalicoSourceOnly: confd and calico-apiserver have no prebuilt download (Calico ships them
// only inside its images): they are built from source at once, with no download tried, and
// a second run finds them up to date.
func TestCalicoSourceOnly(t *testing.T) {
	dir := t.TempDir()
	env := []string{
		"GO=" + stubGo(t, dir, false),
		"ENVTEST_INDEX_URL=http://127.0.0.1:1/envtest-releases.yaml",
		"CALICOCTL_URL=http://127.0.0.1:1/calicoctl",
	}
	out, _ := run(t, dir, env, "confd", "calico-apiserver")
	if strings.Contains(out, "trying") || strings.Count(out, ": building ") != 2 {
		t.Errorf("want two source builds and no download:\n%s", out)
	}
	for _, name := range []string{"confd", "calico-apiserver"} {
		if got := linkOf(t, dir, name); !strings.Contains(got, filepath.Join("controlplane", name+"-v3.31.0", name)) {
			t.Errorf("bin/%s -> %s, want the source build", name, got)
		}
	}
	env[0] = "GO=" + stubGo(t, dir, true)
	if out, _ := run(t, dir, env, "confd", "calico-apiserver"); strings.Count(out, ": up to date") != 2 {
		t.Errorf("second run, want both up to date:\n%s", out)
	}
}
