package cluster

import (
	"strings"
	"testing"
)

// TestCalicoctlLabelValues: calicoctl stores unquoted label values of v3 objects as strings
// (Calico's own fixtures write routeReflector: true); a core Node stays strict, as kubectl is.
func TestCalicoctlLabelValues(t *testing.T) {
	m := &Manifests{Sources: map[string]Source{}}
	err := m.LoadReader("nodes.yaml", strings.NewReader(`apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: n1
  labels: {routeReflector: true, rack: 7, zone: "a"}
spec:
  bgp: {ipv4Address: 10.0.0.1/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := m.State().Node("n1").Labels()
	if got["routeReflector"] != "true" || got["rack"] != "7" || got["zone"] != "a" {
		t.Errorf("labels = %v", got)
	}
	core := &Manifests{Sources: map[string]Source{}}
	err = core.LoadReader("core.yaml", strings.NewReader("apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n  labels: {routeReflector: true}\n"))
	if err == nil || !strings.Contains(err.Error(), "core.yaml#1") {
		t.Errorf("a core Node with a boolean label: err = %v", err)
	}
}
