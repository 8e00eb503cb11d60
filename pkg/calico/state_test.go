package calico

import (
	"fmt"
	"testing"
)

func stateNode(name, addr string, labels map[string]string) *Object {
	n := &Node{Name: name, IPv4Address: addr, K8sLabels: labels}
	return &Object{Kind: KindNode, Name: name, Node: n}
}

// TestReleaseRecyclesOnlyTheOverlaysList: a released overlay's node list serves the next
// overlay, and neither the base state nor an overlay that copied nothing is touched.
func TestReleaseRecyclesOnlyTheOverlaysList(t *testing.T) {
	var objs []*Object
	for i := range 50 {
		objs = append(objs, stateNode(fmt.Sprintf("n%02d", i), fmt.Sprintf("10.0.0.%d", i), map[string]string{"zone": "a"}))
	}
	base := NewState(objs)
	names := func(s *State) string {
		out := ""
		for _, n := range s.Topology().Nodes {
			out += n.Name + "," + n.Labels["team"] + ";"
		}
		return out
	}
	want := names(base)

	a := base.With(stateNode("n07", "10.0.0.7", map[string]string{"zone": "a", "team": "x"}))
	if got := a.Topology().Nodes[7].Labels["team"]; got != "x" {
		t.Fatalf("overlay's node 7 has team %q", got)
	}
	a.Release()
	b := base.With(stateNode("n09", "10.0.0.9", map[string]string{"zone": "a", "team": "y"}))
	if got := b.Topology().Nodes[7].Labels["team"]; got != "" {
		t.Errorf("a recycled list kept the released overlay's node 7 (team %q)", got)
	}
	if got := b.Topology().Nodes[9].Labels["team"]; got != "y" {
		t.Errorf("overlay's node 9 has team %q", got)
	}
	if got := names(base); got != want {
		t.Errorf("the base state changed:\n%s\nwant\n%s", got, want)
	}
	// An overlay that copied nothing shares its parent's list: releasing it leaves that alone.
	c := b.Without(KindBGPPeer, "none")
	c.Release()
	if got := b.Topology().Nodes[9].Labels["team"]; got != "y" {
		t.Errorf("releasing a peer overlay changed its parent: node 9 has team %q", got)
	}
	base.Release()
	if got := names(base); got != want {
		t.Errorf("releasing the base state changed it")
	}
}
