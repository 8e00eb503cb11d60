//go:build e2e

package harnesscheck

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
)

// TestWithoutWebhook records what the API server (the Calico CRDs' schemas and CEL rules) and
// calicoctl accept or refuse on their own, with no webhook: what rrguard adds to, and what
// never reaches it (a CRD schema refuses before validating webhooks are called).
func TestWithoutWebhook(t *testing.T) {
	const node = `{apiVersion: v1, kind: Node, metadata: {name: zyisy, annotations: {projectcalico.org/IPv4Address: 10.30.0.13/22}}}`
	cases := []struct {
		name   string
		via    string // "" (the scenario default) or kubectl, for projectcalico.org/v3 Node
		do     string // apply (default) or delete
		object string
		// refused is a piece of the refusal, or "" when the step is allowed.
		refused string
	}{
		{name: "calicoctl refuses a cluster ID that is not IPv4",
			object:  `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}, spec: {bgp: {ipv4Address: 10.30.0.13/22, routeReflectorClusterID: 1.0.0.256}}}`,
			refused: "error with field RouteReflectorClusterID = '1.0.0.256'"},
		{name: "calicoctl refuses a masked cluster ID",
			object:  `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}, spec: {bgp: {ipv4Address: 10.30.0.13/22, routeReflectorClusterID: 244.0.0.1/32}}}`,
			refused: "because of Tag: ipv4"},
		{name: "kubectl annotate writes any cluster ID", via: "kubectl",
			object: `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}, spec: {bgp: {routeReflectorClusterID: 244.0.0.1/32}}}`},
		{name: "calicoctl refuses an asdot AS number with a part over 65535",
			object:  `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}, spec: {bgp: {ipv4Address: 10.30.0.13/22, asNumber: "65536.1"}}}`,
			refused: "invalid AS Number format (65536.1)"},
		{name: "a node's AS number is an annotation: no int32 limit",
			object: `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}, spec: {bgp: {ipv4Address: 10.30.0.13/22, asNumber: 4294967295}}}`},
		{name: "calicoctl replace needs the core Node",
			object:  `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: nosuchnode}, spec: {bgp: {ipv4Address: 10.30.0.14/22}}}`,
			refused: `nodes "nosuchnode" not found`},
		{name: "calicoctl cannot delete a Node in the Kubernetes datastore", do: "delete",
			object:  `{apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: zyisy}}`,
			refused: "malformed WorkloadEndpoint name"},
		{name: "the v1 CRD refuses a BGPConfiguration AS number over int32",
			object:  `{apiVersion: crd.projectcalico.org/v1, kind: BGPConfiguration, metadata: {name: default}, spec: {asNumber: 4294967295}}`,
			refused: "must be of type integer with format int32 in spec.asNumber"},
		{name: "the v3 CRD refuses a BGPConfiguration AS number over int32",
			object:  `{apiVersion: projectcalico.org/v3, kind: BGPConfiguration, metadata: {name: default}, spec: {asNumber: 4294967295}}`,
			refused: "must be of type integer with format int32 in spec.asNumber"},
		{name: "the v1 CRD refuses a BGPPeer AS number over int32",
			object:  `{apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p}, spec: {peerIP: 10.0.0.1, asNumber: 4294967295}}`,
			refused: "must be of type integer with format int32 in spec.asNumber"},
		{name: "the v3 CRD refuses a BGPPeer AS number over int32",
			object:  `{apiVersion: projectcalico.org/v3, kind: BGPPeer, metadata: {name: p}, spec: {peerIP: 10.0.0.1, asNumber: 4294967295}}`,
			refused: "must be of type integer with format int32 in spec.asNumber"},
		// Calico's CRDs at the pinned version (libcalico-go of b1f3c43f8437) carry no CEL rules:
		// later ones refuse node with nodeSelector and peerIP with peerSelector.
		{name: "the pinned v3 CRD has no CEL rules: conflicting BGPPeer fields are stored",
			object: `{apiVersion: projectcalico.org/v3, kind: BGPPeer, metadata: {name: p}, spec: {node: a, nodeSelector: all(), peerIP: 10.0.0.1, peerSelector: all()}}`},
		{name: "the pinned v1 CRD neither",
			object: `{apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p}, spec: {node: a, nodeSelector: all(), peerIP: 10.0.0.1, peerSelector: all()}}`},
		{name: "a per-node BGPConfiguration may set default-only fields",
			object: `{apiVersion: projectcalico.org/v3, kind: BGPConfiguration, metadata: {name: node.zyisy}, spec: {nodeToNodeMeshEnabled: false}}`},
		{name: "a selector with a newline is stored",
			object: `{apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p}, spec: {peerSelector: "has(a)\nhas(b)"}}`},
	}
	ctx := context.Background()
	runner := &live.Runner{H: h}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := h.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if err := h.Create(ctx, []*unstructured.Unstructured{object(t, node)}); err != nil {
				t.Fatal(err)
			}
			st := scenario.Step{Name: c.name, Do: "apply", Via: c.via, Object: object(t, c.object)}
			if c.do != "" {
				st.Do = c.do
			}
			o, err := runner.Step(ctx, 1, st)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.refused == "" && !o.Allowed:
				t.Errorf("%s: refused: %s", o.Command, o.Message)
			case c.refused != "" && o.Allowed:
				t.Errorf("%s: allowed, want refused with %q", o.Command, c.refused)
			case c.refused != "" && !strings.Contains(o.Message, c.refused):
				t.Errorf("%s: refused with %q, want %q", o.Command, o.Message, c.refused)
			}
			if o.Allowed {
				checkRoundTrip(t, o)
			} else {
				checkUnchanged(t, o)
			}
		})
	}
}

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}
