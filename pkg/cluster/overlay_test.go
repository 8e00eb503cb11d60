package cluster

import (
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/model"
)

// load reads manifests from one YAML stream.
func load(t *testing.T, name, yaml string) *Manifests {
	t.Helper()
	m := &Manifests{}
	if err := m.LoadReader(name, strings.NewReader(yaml)); err != nil {
		t.Fatal(err)
	}
	return m
}

// The cluster: two Ready core Nodes (a NotReady third), a BGPPeer, the mesh on.
const liveYAML = `apiVersion: v1
kind: Node
metadata: {name: a, labels: {zone: x}, annotations: {projectcalico.org/IPv4Address: 10.0.0.1/24}}
status: {conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Node
metadata: {name: b, annotations: {projectcalico.org/IPv4Address: 10.0.0.2/24}}
status: {conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Node
metadata: {name: c, annotations: {projectcalico.org/IPv4Address: 10.0.0.3/24}}
status: {conditions: [{type: Ready, status: "False"}]}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: rr}
spec: {nodeSelector: all(), peerSelector: has(route-reflector)}
`

// TestOver: the manifests' objects replace the cluster's of the same kind and name; a v3 Node
// is laid over the cluster's core Node, a core Node keeps the cluster's readiness; objects
// written as the cluster holds them are no change; the last definition in the files counts.
func TestOver(t *testing.T) {
	base := load(t, "live", liveYAML).Objects
	files := load(t, "changes.yaml", `# a becomes a reflector, through calicoctl
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: a, labels: {route-reflector: "true"}}
spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 1.0.0.1}}
---
# c as kubectl would apply it: no status
apiVersion: v1
kind: Node
metadata: {name: c, annotations: {projectcalico.org/IPv4Address: 10.0.0.3/24, projectcalico.org/ASNumber: "64513"}}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: rr}
spec: {nodeSelector: all(), peerSelector: has(route-reflector)}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: true}
---
apiVersion: crd.projectcalico.org/v1
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
`)
	ov := files.Over(base)
	type change struct {
		op         model.Operation
		kind, name string
	}
	var got []change
	for _, ch := range ov.Changes {
		got = append(got, change{ch.Operation, ch.Target().Kind, ch.Target().Name})
	}
	want := []change{{model.Update, "Node", "a"}, {model.Update, "Node", "c"}, {model.Create, "BGPConfiguration", "default"}}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d: %v, want %v", i, got[i], want[i])
		}
	}
	if ov.Unchanged != 1 {
		t.Errorf("%d unchanged, want 1 (the BGPPeer)", ov.Unchanged)
	}
	a := ov.After.Node("a")
	if a.ClusterID != "1.0.0.1" || a.K8sLabels["zone"] != "x" || a.CalicoLabels["route-reflector"] != "true" || !a.FromCore || a.Ready == nil || !*a.Ready {
		t.Errorf("a after: %+v", a)
	}
	if old := ov.Changes[0].Old.Node; old.ClusterID != "" {
		t.Errorf("a before: %+v", old)
	}
	if c := ov.After.Node("c"); c.ASNumber != "64513" || c.Ready == nil || *c.Ready {
		t.Errorf("c after: %+v (keeps its NotReady condition)", c)
	}
	if ov.Before.Mesh() == ov.After.Mesh() || ov.After.Mesh() {
		t.Errorf("mesh before %v, after %v: the last BGPConfiguration turns it off", ov.Before.Mesh(), ov.After.Mesh())
	}
	if ov.Before.Node("a").ClusterID != "" || len(ov.After.NodeNames()) != 3 {
		t.Errorf("before a %+v, nodes after %v", ov.Before.Node("a"), ov.After.NodeNames())
	}
}

// TestOverNothing: manifests that hold what the cluster holds change nothing.
func TestOverNothing(t *testing.T) {
	base := load(t, "live", liveYAML).Objects
	ov := load(t, "same.yaml", liveYAML).Over(base)
	if len(ov.Changes) != 0 || ov.Unchanged != 4 {
		t.Errorf("%d changes, %d unchanged; want 0 and 4", len(ov.Changes), ov.Unchanged)
	}
}

// TestSourceLines: an object's source names its document and the line its first field is on,
// past comments and separators; an item of a List as kubectl writes it, the line the item
// starts on.
func TestSourceLines(t *testing.T) {
	m := load(t, "peers.yaml", `---
# the first peer
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: one}
spec: {peerIP: 10.0.0.9, asNumber: 64512}
---

# the second
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata: {name: two}
spec: {peerIP: 10.0.0.8, asNumber: 64512}
---
apiVersion: v1
kind: List
items:
- apiVersion: crd.projectcalico.org/v1
  kind: BGPPeer
  metadata: {name: three}
  spec: {peerIP: 10.0.0.7, asNumber: 64512}
`)
	for ref, want := range map[string]Source{
		"BGPPeer.crd.projectcalico.org/one":   {Document: "peers.yaml#1", File: "peers.yaml", Line: 3},
		"BGPPeer.crd.projectcalico.org/two":   {Document: "peers.yaml#2", File: "peers.yaml", Line: 10},
		"BGPPeer.crd.projectcalico.org/three": {Document: "peers.yaml#3[0]", File: "peers.yaml", Line: 18}, // the item's line
	} {
		if got := m.Sources[ref]; got != want {
			t.Errorf("%s: %+v, want %+v", ref, got, want)
		}
	}
}
