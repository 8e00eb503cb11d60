package calico

import (
	"fmt"
	"strings"
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
	b.Release()

	// A node added and released: the next overlay of the base has the base's nodes only.
	added := base.With(stateNode("zz", "10.0.1.1", nil))
	if n := len(added.Topology().Nodes); n != 51 {
		t.Fatalf("%d nodes after adding one, want 51", n)
	}
	added.Release()
	d := base.With(stateNode("n01", "10.0.0.1", map[string]string{"zone": "a", "team": "z"}))
	if got := names(d); got != strings.Replace(want, "n01,;", "n01,z;", 1) {
		t.Errorf("after an added node was released:\n%s\nwant the base with n01 of team z", got)
	}
	// A state laid over a releasable one copies its own list: releasing both in turn and
	// patching the base again leaves each as it was made.
	e := d.With(stateNode("n02", "10.0.0.2", map[string]string{"zone": "a", "team": "w"}))
	if e.list != nil {
		t.Errorf("an overlay of a releasable overlay took a pooled list")
	}
	if got := e.Topology().Nodes[1].Labels["team"] + e.Topology().Nodes[2].Labels["team"]; got != "zw" {
		t.Errorf("nested overlay: teams %q, want zw", got)
	}
	d.Release()
	if got := names(base); got != want {
		t.Errorf("the base state changed:\n%s\nwant\n%s", got, want)
	}
}
