package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// asName runs the tests body as if the binary had been started as name.
func asName(t *testing.T, name string) {
	t.Helper()
	old := invokedAs
	invokedAs = name
	t.Cleanup(func() { invokedAs = old })
}

// TestPluginHelpSaysKubectlRrguard: as kubectl's plugin, usage and examples read as the user
// types them.
func TestPluginHelpSaysKubectlRrguard(t *testing.T) {
	asName(t, pluginName)
	code, out, _ := runCLI(t, "", "sessions", "--help")
	if code != 0 || !strings.Contains(out, "Usage:\n  kubectl rrguard sessions (") || !strings.Contains(out, "\n  kubectl rrguard sessions -f my-calico/ --node rr-1\n") {
		t.Errorf("kubectl-rrguard sessions --help: exit %d\n%s", code, out)
	}
	asName(t, "rrguard")
	if _, out, _ := runCLI(t, "", "sessions", "--help"); strings.Contains(out, "kubectl rrguard") {
		t.Errorf("rrguard sessions --help talks of kubectl:\n%s", out)
	}
}

// TestKubectlFlagsOnEveryClusterCommand: each command that reads a cluster takes kubectl's
// --kubeconfig, --context and -n.
func TestKubectlFlagsOnEveryClusterCommand(t *testing.T) {
	root := newRoot(nil, nil, nil)
	var seen []string
	for _, c := range root.Commands() {
		if c.Flags().Lookup("context") == nil {
			continue
		}
		seen = append(seen, c.Name())
		for _, name := range []string{"kubeconfig", "context", "namespace"} {
			if c.Flags().Lookup(name) == nil {
				t.Errorf("rrguard %s has no --%s", c.Name(), name)
			}
		}
		if f := c.Flags().ShorthandLookup("n"); f == nil && c.Name() != "controller" {
			t.Errorf("rrguard %s has no -n", c.Name())
		}
	}
	for _, want := range []string{"audit", "sessions", "graph", "plan"} {
		if !slices.Contains(seen, want) {
			t.Errorf("rrguard %s reads no cluster (--context)?", want)
		}
	}
}

// TestNamespaceChangesNothing: -n, as kubectl takes it for cluster-scoped objects.
func TestNamespaceChangesNothing(t *testing.T) {
	_, want, _ := runCLI(t, "", "sessions", "-f", seedDir, "--node", "zyisy")
	code, got, errOut := runCLI(t, "", "sessions", "-f", seedDir, "--node", "zyisy", "-n", "kube-system")
	if code != 0 || got != want {
		t.Errorf("sessions -n kube-system: exit %d %s\n%s\nwant\n%s", code, errOut, got, want)
	}
}

// complete runs kubectl's completion hook as kubectl runs it: kubectl_complete-rrguard with the
// words after `kubectl rrguard`, the last one being completed.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	asName(t, completionName)
	code, out, errOut := runCLI(t, "", commandLine(completionName, words)...)
	if code != 0 {
		t.Fatalf("kubectl_complete-rrguard %q: exit %d %s", words, code, errOut)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasPrefix(line, ":") {
			got = append(got, strings.SplitN(line, "\t", 2)[0])
		}
	}
	return got
}

func TestCompletion(t *testing.T) {
	if got := complete(t, "sess"); !slices.Equal(got, []string{"sessions"}) {
		t.Errorf("kubectl rrguard sess<TAB>: %v", got)
	}
	if got := complete(t, "sessions", "-f", seedDir, "--node", "r"); !slices.Equal(got, []string{"rxgks"}) {
		t.Errorf("kubectl rrguard sessions -f seed --node r<TAB>: %v, want the seed's node rxgks", got)
	}
	kubeconfig := filepath.Join(t.TempDir(), "config")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {}}]\n" +
		"contexts: [{name: prod-eu, context: {cluster: c, user: u}}, {name: prod-us, context: {cluster: c, user: u}}, {name: staging, context: {cluster: c, user: u}}]\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := complete(t, "audit", "--kubeconfig", kubeconfig, "--context", "prod"); !slices.Equal(got, []string{"prod-eu", "prod-us"}) {
		t.Errorf("kubectl rrguard audit --context prod<TAB>: %v", got)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	if got := complete(t, "sessions", "--context", "st"); !slices.Equal(got, []string{"staging"}) {
		t.Errorf("KUBECONFIG=… kubectl rrguard sessions --context st<TAB>: %v", got)
	}
}

// TestCompletionScripts: `rrguard completion SHELL` writes a script for each shell.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCLI(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "rrguard") || len(out) < 500 {
			t.Errorf("rrguard completion %s: exit %d %s (%d bytes)", shell, code, errOut, len(out))
		}
	}
}
