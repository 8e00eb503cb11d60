//go:build e2e

package bird

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// planStep is the part of `rrguard plan -o json` a replay needs.
type planStep struct {
	Number    int            `json:"number"`
	Summary   string         `json:"summary"`
	Operation string         `json:"operation"`
	Kind      string         `json:"kind"`
	Name      string         `json:"name"`
	Object    map[string]any `json:"object"`
}

// TestPlanStates plays every state of the live proof's migration on real BIRD: 30 nodes in
// 3 zones with the mesh on, then each state `rrguard plan` leaves after each of its steps, up
// to the mesh off on reflectors. In every one BIRD must agree with rrguard and every node
// must hold every other node's pod routes: no step loses a route.
func TestPlanStates(t *testing.T) {
	t.Parallel()
	start := topology{mesh: true}
	for i := 0; i < 30; i++ {
		start.nodes = append(start.nodes, tnode{name: fmt.Sprintf("node-%02d", i), v4: true,
			labels: labels("topology.kubernetes.io/zone", string(rune('a'+i%3)))})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.yaml"), []byte(start.planInput()), 0o644); err != nil {
		t.Fatal(err)
	}
	var p struct {
		Steps []planStep `json:"steps"`
	}
	if err := json.Unmarshal(rrguard(t, "plan", "-f", dir, "-o", "json"), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 12 {
		t.Fatalf("%d steps, want 12 (the live proof's)", len(p.Steps))
	}
	states := []topology{start}
	for _, s := range p.Steps {
		states = append(states, applyPlanStep(t, states[len(states)-1], s))
	}
	if last := states[len(states)-1]; last.mesh {
		t.Fatal("the last state still has the mesh on")
	}
	for k, topo := range states {
		name := "start"
		if k > 0 {
			name = fmt.Sprintf("after-step-%02d", k)
		}
		// The states are rendered as soon as confd is free and played one at a time (check's
		// big): the next state's confd runs while BIRD settles on this one.
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			learned := check(t, topo)
			for _, n := range topo.nodes {
				got := learned[n.name+" IPv4"]
				if len(got) != len(topo.nodes)-1 {
					t.Errorf("%s: %s holds the pod routes of %d other nodes in BIRD, want all %d: %v", name, n.name, len(got), len(topo.nodes)-1, got)
				}
			}
		})
	}
}

// applyPlanStep returns the topology after one step: the plan writes whole projectcalico.org/v3
// objects for v3 Node manifests, so a step replaces its object.
func applyPlanStep(t *testing.T, topo topology, s planStep) topology {
	t.Helper()
	if s.Operation != "apply" {
		t.Fatalf("step %d: operation %q on v3 manifests", s.Number, s.Operation)
	}
	next := topo
	next.nodes = slices.Clone(topo.nodes)
	next.peers = slices.Clone(topo.peers)
	spec, _ := s.Object["spec"].(map[string]any)
	switch s.Kind {
	case "Node":
		i := slices.IndexFunc(next.nodes, func(n tnode) bool { return n.name == s.Name })
		if i < 0 {
			t.Fatalf("step %d: no node %s", s.Number, s.Name)
		}
		n := next.nodes[i]
		n.labels = map[string]string{}
		meta, _ := s.Object["metadata"].(map[string]any)
		ls, _ := meta["labels"].(map[string]any)
		for k, v := range ls {
			n.labels[k], _ = v.(string)
		}
		bgp, _ := spec["bgp"].(map[string]any)
		n.cid, _ = bgp["routeReflectorClusterID"].(string)
		next.nodes[i] = n
	case "BGPPeer":
		p := tpeer{name: s.Name}
		p.nodeSel, _ = spec["nodeSelector"].(string)
		p.peerSel, _ = spec["peerSelector"].(string)
		if i := slices.IndexFunc(next.peers, func(x tpeer) bool { return x.name == s.Name }); i >= 0 {
			next.peers[i] = p
		} else {
			next.peers = append(next.peers, p)
		}
	case "BGPConfiguration":
		mesh, ok := spec["nodeToNodeMeshEnabled"].(bool)
		if !ok {
			t.Fatalf("step %d: BGPConfiguration without nodeToNodeMeshEnabled: %v", s.Number, spec)
		}
		next.mesh = mesh
	default:
		t.Fatalf("step %d: kind %s", s.Number, s.Kind)
	}
	for i := range next.nodes {
		next.nodes[i].labels = maps.Clone(next.nodes[i].labels)
	}
	return next
}
