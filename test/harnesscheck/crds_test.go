//go:build e2e

package harnesscheck

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rrguard/rrguard/pkg/calico"
)

// rrguardFields are Calico objects with every BGPPeer and BGPConfiguration field rrguard reads
// (calico.NewPeer, calico.State, validate's object rules); rrguard writes none of these kinds.
// The peers are split so that each is a peering Calico's own validation accepts.
var rrguardFields = []string{
	`{kind: BGPPeer, metadata: {name: to-ip}, spec: {node: n1, peerIP: "10.0.0.1:179", asNumber: 64512, reversePeering: Manual}}`,
	`{kind: BGPPeer, metadata: {name: rr-mesh}, spec: {nodeSelector: "has(route-reflector)", peerSelector: "has(route-reflector)"}}`,
	`{kind: BGPPeer, metadata: {name: to-workloads}, spec: {nodeSelector: all(), localWorkloadSelector: "app == 'bgp'", asNumber: 65001}}`,
	`{kind: BGPConfiguration, metadata: {name: default}, spec: {nodeToNodeMeshEnabled: true, asNumber: 63400,
		serviceClusterIPs: [{cidr: 10.96.0.0/12}], serviceExternalIPs: [{cidr: 192.0.2.0/24}], serviceLoadBalancerIPs: [{cidr: 198.51.100.0/24}],
		nodeMeshPassword: {secretKeyRef: {name: bgp, key: password}}, nodeMeshMaxRestartTime: 120s}}`,
	`{kind: BGPConfiguration, metadata: {name: node.n1}, spec: {asNumber: 64513}}`,
}

// TestCalicoCRDsTakeRRGuardFields creates, in both API groups, objects with every field rrguard
// reads, with strict field validation (an unknown field is an error, not pruned), and reads them
// back unchanged: the CRDs the harness installs are a schema rrguard can be tested against.
func TestCalicoCRDsTakeRRGuardFields(t *testing.T) {
	ctx := context.Background()
	for _, group := range []string{calico.GroupCRD + "/v1", calico.GroupV3 + "/v3"} {
		t.Run(group, func(t *testing.T) {
			if err := h.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			for _, doc := range rrguardFields {
				obj := object(t, doc)
				obj.SetAPIVersion(group)
				want := obj.DeepCopy()
				if err := h.Client.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
					t.Errorf("create %s %s: %v", group, ref(want), err)
					continue
				}
				got := getObject(t, want.GroupVersionKind(), want.GetName())
				if got == nil {
					t.Errorf("%s %s: not found after create", group, ref(want))
					continue
				}
				for field, value := range specOf(t, want) {
					if stored := specOf(t, got)[field]; !reflect.DeepEqual(stored, value) {
						t.Errorf("%s %s: spec.%s stored as %v, want %v", group, ref(want), field, stored, value)
					}
				}
				if _, err := calico.Decode(got); err != nil {
					t.Errorf("%s %s as stored: %v", group, ref(want), err)
				}
			}
			// The check has teeth: a field the schema does not know is refused, not pruned.
			unknown := object(t, `{kind: BGPPeer, metadata: {name: unknown-field}, spec: {peerIP: 10.0.0.2, noSuchField: 1}}`)
			unknown.SetAPIVersion(group)
			if err := h.Client.Create(ctx, unknown, client.FieldValidation(metav1.FieldValidationStrict)); err == nil || !strings.Contains(err.Error(), "noSuchField") {
				t.Errorf("create %s BGPPeer with spec.noSuchField: %v, want refused naming the field", group, err)
			}
		})
	}
}

// specOf is an object's spec as JSON decodes it (numbers float64, whatever decoded them first).
func specOf(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	raw, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

func ref(u *unstructured.Unstructured) string { return fmt.Sprintf("%s %q", u.GetKind(), u.GetName()) }
