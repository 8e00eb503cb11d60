//go:build e2e

// Package deploy proves config/webhook, the Dockerfile and docs/install.md the way a user meets
// them: the kustomization rendered by real kubectl, applied server-side to a real kube-apiserver
// (RBAC authorizer on) with cert-manager's and Calico's CRDs, cert-manager's objects decoded
// with cert-manager's Go types, and the image's binaries, built by the Dockerfile's own build
// step from the Docker build context, run with the Deployment's arguments as its
// ServiceAccount.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"
)

// The names config/webhook installs.
const (
	namespace      = "rrguard-system"
	serviceAccount = "rrguard-webhook"
	deployment     = "rrguard-webhook"
	container      = "webhook"
)

var h *harness.Harness

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	code := harness.Main(m, harness.Options{
		// envtest defaults to RBAC as well; said here because every test below relies on it.
		APIServerArgs: map[string][]string{"authorization-mode": {"RBAC"}},
	}, &h)
	if image.scratch != "" {
		_ = os.RemoveAll(image.scratch)
	}
	os.Exit(code)
}

// render runs `kubectl kustomize dir` (dir relative to the repository root) and decodes the
// output.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := h.Kubectl(ctx, nil, "kustomize", filepath.Join(h.RootDir, dir))
	if out.Err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, out.Err, out.Stderr)
	}
	objs, err := decodeYAML([]byte(out.Stdout))
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return objs
}

// renderOverlay writes an overlay kustomization (and files, by path relative to it) next to a
// copy of config/ and renders it, as a user's overlay directory would be.
func renderOverlay(t *testing.T, kustomization string, files map[string]string) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(h.RootDir, "config"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	files = maps.Clone(files)
	if files == nil {
		files = map[string]string{}
	}
	files["kustomization.yaml"] = kustomization
	for name, data := range files {
		path := filepath.Join(dir, "overlay", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := h.Kubectl(ctx, nil, "kustomize", filepath.Join(dir, "overlay"))
	if out.Err != nil {
		t.Fatalf("kubectl kustomize overlay: %v\n%s", out.Err, out.Stderr)
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
		if err == io.EOF {
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

// find returns the one object of a kind and name (name "" for the only one of its kind).
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q in the rendered manifests, found %d", kind, name, len(found))
	}
	return found[0]
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.GetKind()]++
	}
	return out
}

// moduleDir is harness.ModuleDir for a test: the module's directory in the module cache, at
// the version go.mod requires.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	dir, err := harness.ModuleDir(h.RootDir, module)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
