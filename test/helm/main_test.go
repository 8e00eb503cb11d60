//go:build e2e

// Package helm proves charts/rrguard with Helm itself (helm.sh/helm/v4, built from the Go
// module proxy): lint, template against config/webhook rendered by kubectl's kustomize (the
// same objects: webhook rules, failure policies, RBAC, security contexts), each value, and an
// install into a real kube-apiserver, server-side dry run and for real, where bin/webhook runs
// as the chart's pod would, with the chart's certificate, and the webhook the chart registers
// answers the seed story.
package helm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helmModule is the Helm the tests run: `go install helm.sh/helm/v4/cmd/helm@helmVersion`,
// kept in the user's cache directory beside the control plane's binaries.
const (
	helmModule  = "helm.sh/helm/v4/cmd/helm"
	helmVersion = "v4.3.2"
)

// The release the tests install, in the namespace config/webhook uses.
const (
	release   = "rrguard"
	namespace = "rrguard-system"
	chartDir  = "charts/rrguard"
)

var h *harness.Harness

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{
		// The webhook runs as the chart's ServiceAccount: RBAC decides what it may read.
		APIServerArgs: map[string][]string{"authorization-mode": {"RBAC"}},
	}, &h))
}

var helmBinary struct {
	once sync.Once
	path string
	took time.Duration
	err  error
}

// helmPath builds Helm once (the Go build cache makes later builds quick) and returns it.
func helmPath(t *testing.T) string {
	t.Helper()
	helmBinary.once.Do(func() {
		start := time.Now()
		cache, err := os.UserCacheDir()
		if err != nil {
			helmBinary.err = err
			return
		}
		dir := filepath.Join(cache, "rrguard", "helm-"+helmVersion)
		helmBinary.path = filepath.Join(dir, "helm")
		if _, err := os.Stat(helmBinary.path); err == nil {
			return
		}
		cmd := exec.Command("go", "install", helmModule+"@"+helmVersion)
		cmd.Dir = os.TempDir() // outside rrguard's module: Helm's own go.mod decides
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmBinary.err = fmt.Errorf("go install %s@%s: %v\n%s", helmModule, helmVersion, err, out)
		}
		helmBinary.took = time.Since(start)
	})
	if helmBinary.err != nil {
		t.Fatal(helmBinary.err)
	}
	return helmBinary.path
}

// helmResult is what one helm command printed and whether it succeeded.
type helmResult struct {
	stdout, stderr string
	err            error
}

// runHelm runs helm with the test API server's kubeconfig and directories of its own.
func runHelm(t *testing.T, args ...string) helmResult {
	t.Helper()
	bin := helmPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = h.RootDir
	home := filepath.Join(h.WorkDir(), "helm-home")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "KUBECONFIG=" + h.Kubeconfig,
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(home, "config"), "HELM_DATA_HOME=" + filepath.Join(home, "data"),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := helmResult{err: cmd.Run()}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	if r.err != nil {
		r.err = fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

// template renders the chart as `helm template` does (CRDs included), with more flags.
func template(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	r := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace, "--include-crds"}, args...)...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	objs, err := decodeYAML([]byte(r.stdout))
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, r.stdout)
	}
	return objs
}

// kustomize renders config/webhook, or an overlay of it with components.
func kustomize(t *testing.T, components ...string) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(h.RootDir, "config"))); err != nil {
		t.Fatal(err)
	}
	k := "resources: [../config/webhook]\n"
	if len(components) > 0 {
		// config/webhook names its image in its own kustomization, which does not reach a
		// component's Deployment (the controller's): an overlay has to name it again.
		k += "images: [{name: rrguard, newName: ghcr.io/rrguard/rrguard, newTag: latest}]\n"
		k += "components:\n"
		for _, c := range components {
			k += "  - ../config/components/" + c + "\n"
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "overlay", "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.Kubectl(context.Background(), nil, "kustomize", filepath.Join(dir, "overlay"))
	if out.Err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", out.Err, out.Stderr)
	}
	objs, err := decodeYAML([]byte(out.Stdout))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decodeYAML(raw []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// find returns the one object of a kind and name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, found %d", kind, name, len(found))
	}
	return found[0]
}

func has(objs []*unstructured.Unstructured, kind, name string) bool {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return true
		}
	}
	return false
}
