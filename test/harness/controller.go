package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
)

// What the live tests of `rrguard plan` and `rrguard controller` share: a cluster of nodes in
// zones, the controller's identity, its metrics, a node going NotReady.

// ControllerNamespace is where config/components/controller installs the controller, and
// ControllerUser the identity it runs as.
const (
	ControllerNamespace = "rrguard-system"
	ControllerUser      = "system:serviceaccount:" + ControllerNamespace + ":rrguard-controller"
)

// ZoneNodes returns n Ready core/v1 Nodes with BGP addresses, round-robin over zones a, b, c.
func ZoneNodes(n int) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%02d", i)
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]any{"name": name,
				"labels":      map[string]any{"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": string(rune('a' + i%3))},
				"annotations": map[string]any{"projectcalico.org/IPv4Address": fmt.Sprintf("10.0.0.%d/24", i+1)}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
		}})
	}
	return out
}

// ControllerKubeconfig creates the controller's namespace and the objects of
// config/components/controller/rbac.yaml (those that exist are kept) and returns a kubeconfig,
// in a directory of t's, that acts as ControllerUser: a controller run with it has the
// component's permissions only.
func (h *Harness) ControllerKubeconfig(t testing.TB) string {
	t.Helper()
	path, err := h.controllerKubeconfig(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func (h *Harness) controllerKubeconfig(ctx context.Context, dir string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ControllerNamespace}}
	if err := h.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	raw, err := os.ReadFile(filepath.Join(h.RootDir, "config", "components", "controller", "rbac.yaml"))
	if err != nil {
		return "", err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", err
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := h.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	cfg, err := clientcmd.LoadFromFile(h.Kubeconfig)
	if err != nil {
		return "", err
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate = ControllerUser
	}
	path := filepath.Join(dir, "controller.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// Metric reads one sample of a Prometheus endpoint (-2 when it is absent or unreadable).
func Metric(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -2
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				return v
			}
		}
	}
	return -2
}

// SetReady sets a node's Ready condition, as the node lifecycle controller does.
func (h *Harness) SetReady(ctx context.Context, name string, status corev1.ConditionStatus) error {
	n, err := h.Node(ctx, name)
	if err != nil {
		return err
	}
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = status
		}
	}
	return h.Client.Status().Update(ctx, n)
}
