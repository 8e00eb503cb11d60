//go:build e2e

package harnesscheck

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestControlPlane checks what the harness starts: the pinned API server, the Calico CRDs of
// both groups, Node status written by Create, and a node's Calico label set.
func TestControlPlane(t *testing.T) {
	ctx := context.Background()
	out := h.Kubectl(ctx, nil, "version", "-o", "json")
	if out.Err != nil {
		t.Fatalf("%v: %s", out.Err, out.Stderr)
	}
	var v struct {
		Client struct{ GitVersion string } `json:"clientVersion"`
		Server struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(out.Stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Client.GitVersion != "v1.37.2" || v.Server.GitVersion != "v1.37.2" {
		t.Errorf("kubectl %s, kube-apiserver %s: want v1.37.2 (run make controlplane)", v.Client.GitVersion, v.Server.GitVersion)
	}

	out = h.Kubectl(ctx, nil, "api-resources", "-o", "name")
	for _, r := range []string{
		"bgppeers.crd.projectcalico.org", "bgpconfigurations.crd.projectcalico.org", "bgpfilters.crd.projectcalico.org",
		"bgppeers.projectcalico.org", "bgpconfigurations.projectcalico.org", "bgpfilters.projectcalico.org",
	} {
		if !strings.Contains(out.Stdout, r+"\n") {
			t.Errorf("API resource %s not served: %s %s", r, out.Stdout, out.Stderr)
		}
	}

	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	n := object(t, `{apiVersion: v1, kind: Node, metadata: {name: n1, labels: {a: k8s, b: k8s},
		annotations: {projectcalico.org/labels: '{"b":"calico","c":"calico"}'}},
		status: {conditions: [{type: Ready, status: "False"}]}}`)
	if err := h.Create(ctx, []*unstructured.Unstructured{n}); err != nil {
		t.Fatal(err)
	}
	node, err := h.Node(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(node.Status.Conditions) != 1 || node.Status.Conditions[0].Type != "Ready" || node.Status.Conditions[0].Status != "False" {
		t.Errorf("status conditions %+v, want Ready=False", node.Status.Conditions)
	}
	labels, err := h.NodeCalicoLabels(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "k8s", "b": "k8s", "c": "calico"}; !maps.Equal(labels, want) {
		t.Errorf("Calico labels %v, want %v (k8s labels win)", labels, want)
	}
}

// TestCalicoctl records how calicoctl v3.31.0 behaves against the test API server in
// Kubernetes-datastore mode.
func TestCalicoctl(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	// `calicoctl version` asks for the cluster's version in ClusterInformation "default",
	// which needs Calico's ClusterInformation CRD and calico-node: the harness has neither. Other
	// commands skip their version check when ClusterInformation is absent.
	out := h.Calicoctl(ctx, nil, "version")
	if !strings.Contains(out.Stdout, "Client Version:    v3.31.0") || out.Err == nil ||
		!strings.Contains(out.Stderr, "unable to retrieve Cluster Version or Type") {
		t.Errorf("calicoctl version: %v\n%s%s", out.Err, out.Stdout, out.Stderr)
	}

	// calicoctl writes a projectcalico.org/v3 BGPPeer into crd.projectcalico.org/v1, keeping the
	// v3 metadata in an annotation; the projectcalico.org/v3 CRD is not touched.
	peer := `{apiVersion: projectcalico.org/v3, kind: BGPPeer, metadata: {name: rr-to-rr-peer}, spec: {nodeSelector: "has(route-reflector)", peerSelector: "has(route-reflector)"}}`
	path, err := h.WriteFile("calicoctl-peer.yaml", []byte(peer))
	if err != nil {
		t.Fatal(err)
	}
	if out := h.Calicoctl(ctx, nil, "apply", "-f", path); out.Err != nil {
		t.Fatalf("%v: %s", out.Err, out.Stderr)
	}
	v1 := getObject(t, schema.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"}, "rr-to-rr-peer")
	if v1 == nil {
		t.Fatal("calicoctl apply: no crd.projectcalico.org/v1 BGPPeer")
	}
	if sel, _, _ := unstructured.NestedString(v1.Object, "spec", "peerSelector"); sel != "has(route-reflector)" {
		t.Errorf("stored peerSelector %q", sel)
	}
	if _, ok := v1.GetAnnotations()["projectcalico.org/metadata"]; !ok {
		t.Errorf("no projectcalico.org/metadata annotation: %v", v1.GetAnnotations())
	}
	if v3 := getObject(t, schema.GroupVersionKind{Group: "projectcalico.org", Version: "v3", Kind: "BGPPeer"}, "rr-to-rr-peer"); v3 != nil {
		t.Errorf("calicoctl apply also wrote projectcalico.org/v3: %v", v3.Object)
	}
	out = h.Calicoctl(ctx, nil, "get", "bgppeer", "rr-to-rr-peer", "-o", "yaml")
	if out.Err != nil || !strings.Contains(out.Stdout, "peerSelector: has(route-reflector)") {
		t.Errorf("calicoctl get bgppeer: %v %q %s", out.Err, out.Stdout, out.Stderr)
	}
}

func getObject(t *testing.T, gvk schema.GroupVersionKind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := h.Client.Get(context.Background(), client.ObjectKey{Name: name}, u); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return u
}
