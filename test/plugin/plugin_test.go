//go:build e2e

package plugin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// seedFiles are the seed cluster before its reflectors got cluster IDs, with the mesh already
// off: two deny-level findings, and sessions worth listing.
var seedFiles = []string{"nodes.yaml", "bgpconfig.yaml", "peer.yaml", "rr-to-rr-peer.yaml"}

// result is what one command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

func runIn(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// userEnv is a user's shell: PATH with the plugin's directory and the usual tools, no
// kubeconfig of the caller's, HOME of its own; extra is added last.
func userEnv(t *testing.T, pathDir string, extra ...string) []string {
	t.Helper()
	env := []string{"PATH=" + pathDir + string(os.PathListSeparator) + "/usr/bin:/bin", "HOME=" + t.TempDir()}
	return append(env, extra...)
}

// kubectlConfig writes a kubeconfig with the test API server as context "test" and, as the
// current context, "elsewhere": a server that does not answer.
func kubectlConfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(h.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	current := cfg.Contexts[cfg.CurrentContext]
	test := *current
	cfg.Contexts = map[string]*clientcmdapi.Context{"test": &test}
	elsewhere := *cfg.Clusters[current.Cluster]
	elsewhere.Server = "https://127.0.0.1:1"
	cfg.Clusters["elsewhere"] = &elsewhere
	other := *current
	other.Cluster = "elsewhere"
	cfg.Contexts["elsewhere"] = &other
	cfg.CurrentContext = "elsewhere"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubectlRrguard: installed from the krew manifest, the plugin runs through kubectl's plugin
// mechanism against the test API server, with kubectl's --kubeconfig, $KUBECONFIG, --context
// and -n, and tells the same as rrguard on the same objects as files.
func TestKubectlRrguard(t *testing.T) {
	pathDir, store := installWithKrew(t)
	kubectl := filepath.Join(h.BinDir, "kubectl")
	seed := make([]string, len(seedFiles))
	for i, f := range seedFiles {
		seed[i] = filepath.Join(h.RootDir, "examples", "seed", f)
	}
	if out, ok := h.KubectlText("", append([]string{"apply", "--server-side"}, fileArgs(seed)...)...); !ok {
		t.Fatal(out)
	}
	kubeconfig := kubectlConfig(t)

	if r := runIn(t, userEnv(t, pathDir), kubectl, "plugin", "list"); !strings.Contains(r.stdout, filepath.Join(pathDir, "kubectl-rrguard")) {
		t.Fatalf("kubectl plugin list does not find the plugin in %s:\n%s%s", pathDir, r.stdout, r.stderr)
	}

	// What rrguard itself says about the same objects as files.
	rrguard := filepath.Join(store, "kubectl-rrguard")
	offlineAudit := runIn(t, userEnv(t, pathDir), rrguard, append([]string{"audit"}, fileArgs(seed)...)...)
	offlineSessions := runIn(t, userEnv(t, pathDir), rrguard, append([]string{"sessions", "--node", "uqwst"}, fileArgs(seed)...)...)
	if offlineAudit.code != 1 || !strings.Contains(offlineAudit.stdout, "mesh-disable-needs-reflectors") || offlineSessions.code != 0 {
		t.Fatalf("rrguard on the seed files: audit exit %d, sessions exit %d\n%s%s", offlineAudit.code, offlineSessions.code, offlineAudit.stdout, offlineSessions.stdout)
	}

	for _, c := range []struct {
		name string
		env  []string
		args []string
		want result
	}{
		{"audit --kubeconfig --context", nil, []string{"rrguard", "audit", "--kubeconfig", kubeconfig, "--context", "test"}, offlineAudit},
		{"audit with $KUBECONFIG", []string{"KUBECONFIG=" + kubeconfig}, []string{"rrguard", "audit", "--context", "test"}, offlineAudit},
		{"sessions --node", []string{"KUBECONFIG=" + kubeconfig}, []string{"rrguard", "sessions", "--node", "uqwst", "--context", "test"}, offlineSessions},
		{"sessions -n", nil, []string{"rrguard", "sessions", "--kubeconfig", kubeconfig, "--context=test", "-n", "kube-system", "--node", "uqwst"}, offlineSessions},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runIn(t, userEnv(t, pathDir, c.env...), kubectl, c.args...)
			if r.code != c.want.code || r.stdout != c.want.stdout {
				t.Errorf("kubectl %s: exit %d, want %d (as rrguard on the files)\n%s%s\n--- rrguard on the files:\n%s", strings.Join(c.args, " "), r.code, c.want.code, r.stdout, r.stderr, c.want.stdout)
			}
		})
	}

	// The kubeconfig's current context is the one that does not answer: without --context the
	// plugin goes there, as kubectl would, and says where.
	r := runIn(t, userEnv(t, pathDir, "KUBECONFIG="+kubeconfig), kubectl, "rrguard", "sessions", "--node", "uqwst")
	if r.code != 2 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("kubectl rrguard sessions on the current context (not answering): exit %d, want 2 naming https://127.0.0.1:1\n%s%s", r.code, r.stdout, r.stderr)
	}
	// kubectl itself refuses its flags before a plugin's name: the docs say to put them after.
	r = runIn(t, userEnv(t, pathDir), kubectl, "--kubeconfig", kubeconfig, "rrguard", "audit")
	if r.code == 0 || !strings.Contains(r.stderr, "flags cannot be placed before plugin name") {
		t.Errorf("kubectl --kubeconfig … rrguard audit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runIn(t, userEnv(t, pathDir), kubectl, "rrguard", "sessions", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "kubectl rrguard sessions -f my-calico/ --node rr-1") {
		t.Errorf("kubectl rrguard sessions --help: examples do not say kubectl rrguard:\n%s%s", r.stdout, r.stderr)
	}

	// kubectl completes the plugin's arguments through kubectl_complete-rrguard on the PATH.
	if err := os.Symlink(filepath.Join(store, "kubectl_complete-rrguard"), filepath.Join(pathDir, "kubectl_complete-rrguard")); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, userEnv(t, pathDir, "KUBECONFIG="+kubeconfig), kubectl, "__complete", "rrguard", "sessions", "--context", "test", "--node", "")
	var nodes []string
	for _, line := range strings.Split(r.stdout, "\n") {
		if line != "" && !strings.HasPrefix(line, ":") {
			nodes = append(nodes, strings.SplitN(line, "\t", 2)[0])
		}
	}
	if want := []string{"qtwtv", "rxgks", "uqwst", "volwl", "zyisy"}; !slices.Equal(nodes, want) {
		t.Errorf("kubectl rrguard sessions --node <TAB>: %v, want the cluster's nodes %v\n%s", nodes, want, r.stderr)
	}
}

func fileArgs(files []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	return args
}
