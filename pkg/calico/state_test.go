package calico

import (
	"fmt"
	"strings"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// A list copied from another list is a copy of that list's use: once that list is
	// released and patched anew, a recycled copy of it is not taken for a copy of the new use.
	e := d.With(stateNode("n02", "10.0.0.2", map[string]string{"zone": "a", "team": "w"}))
	if got := e.Topology().Nodes[1].Labels["team"] + e.Topology().Nodes[2].Labels["team"]; got != "zw" {
		t.Errorf("nested overlay: teams %q, want zw", got)
	}
	e.Release()
	d.Release()
	for j := range 4 { // a different node each time, whichever lists the pool hands out
		changed := fmt.Sprintf("n%02d", 3+j)
		d = base.With(stateNode(changed, "10.0.0.3", map[string]string{"zone": "a", "team": "v"}))
		e = d.With(stateNode("n10", "10.0.0.10", map[string]string{"zone": "a", "team": "u"}))
		for _, n := range e.Topology().Nodes[:12] {
			want := map[string]string{changed: "v", "n10": "u"}[n.Name]
			if got := n.Labels["team"]; got != want {
				t.Errorf("round %d, nested overlay after recycling: %s has team %q, want %q", j, n.Name, got, want)
			}
		}
		d.Release() // first, so that its list comes back before the copy of it
		e.Release()
	}
	if got := names(base); got != want {
		t.Errorf("the base state changed:\n%s\nwant\n%s", got, want)
	}
}

// TestNodeNames: the names of the nodes a state holds, sorted, through overlays that add,
// replace and remove nodes, laid over each other; the root state's list is the caller's own.
func TestNodeNames(t *testing.T) {
	base := NewState([]*Object{stateNode("c", "10.0.0.3", nil), stateNode("a", "10.0.0.1", nil), stateNode("b", "10.0.0.2", nil)})
	for _, c := range []struct {
		name string
		s    *State
		want string
	}{
		{"root", base, "a,b,c"},
		{"added", base.With(stateNode("bb", "10.0.0.4", nil)), "a,b,bb,c"},
		{"replaced", base.With(stateNode("b", "10.0.0.9", nil)), "a,b,c"},
		{"removed", base.Without(KindNode, "a"), "b,c"},
		{"removed unknown", base.Without(KindNode, "zz"), "a,b,c"},
		{"added then removed", base.With(stateNode("d", "10.0.0.4", nil)).Without(KindNode, "d"), "a,b,c"},
		{"removed then added back", base.Without(KindNode, "c").With(stateNode("c", "10.0.0.3", nil)), "a,b,c"},
		{"under a peer overlay", base.Without(KindNode, "b").Without(KindBGPPeer, "p"), "a,c"},
	} {
		if got := strings.Join(c.s.NodeNames(), ","); got != c.want {
			t.Errorf("%s: NodeNames() = %s, want %s", c.name, got, c.want)
		}
	}
	names := base.NodeNames()
	names[0] = "changed"
	if got := strings.Join(base.NodeNames(), ","); got != "a,b,c" {
		t.Errorf("changing the returned list changed the state's: %s", got)
	}
}

// TestNamesAfterChangeThenRemoval: an object changed by one overlay and removed by the next
// is gone (calicoctl delete ippool first updates the pool with disabled: true, then deletes
// it; the webhook judges the delete with the update still laid over its snapshot).
func TestNamesAfterChangeThenRemoval(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "p"}
	pool := &Object{Kind: KindIPPool, Group: GroupCRD, Name: "p", Pool: &apiv3.IPPool{ObjectMeta: meta, Spec: apiv3.IPPoolSpec{CIDR: "192.168.0.0/16"}}}
	disabled := &Object{Kind: KindIPPool, Group: GroupCRD, Name: "p", Pool: &apiv3.IPPool{ObjectMeta: meta, Spec: apiv3.IPPoolSpec{CIDR: "192.168.0.0/16", Disabled: true}}}
	filter := &Object{Kind: KindBGPFilter, Group: GroupCRD, Name: "p", Filter: &apiv3.BGPFilter{ObjectMeta: meta}}
	config := &Object{Kind: KindBGPConfiguration, Group: GroupCRD, Name: "p", Config: &apiv3.BGPConfiguration{ObjectMeta: meta}}
	base := NewState([]*Object{pool, filter, config})
	for _, c := range []struct {
		name  string
		names func(*State) []string
		s     *State
	}{
		{"pool", (*State).PoolNames, base.With(disabled).Without(KindIPPool, "p")},
		{"filter", (*State).FilterNames, base.With(filter).Without(KindBGPFilter, "p")},
		{"config", (*State).ConfigNames, base.With(config).Without(KindBGPConfiguration, "p")},
	} {
		if got := c.names(c.s); len(got) != 0 {
			t.Errorf("%s changed then removed: names %v, want none", c.name, got)
		}
	}
	if n := len(base.With(disabled).Without(KindIPPool, "p").Topology().Pools); n != 1 {
		t.Errorf("the removed pool: %d pools in the model, want 1 (gone, its blocks still held)", n)
	}
}

// TestFlat: a state flattened from Node overlays (a change, a node added, one removed, one
// changed twice) holds what the overlays hold, keeps their topology, and walks no overlay; a
// state with an overlay of another kind is not flattened.
func TestFlat(t *testing.T) {
	var objs []*Object
	for i := range 5 {
		objs = append(objs, stateNode(fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.0.%d", i), map[string]string{"team": "a"}))
	}
	s := NewState(objs).
		With(stateNode("n1", "10.0.0.1", map[string]string{"team": "b"})).
		With(stateNode("n9", "10.0.0.9", nil)).
		Without(KindNode, "n3").
		With(stateNode("n2", "10.0.0.2", map[string]string{"team": "c"})).
		With(stateNode("n2", "10.0.0.2", map[string]string{"team": "d"}))
	flat, ok := s.Flat()
	if !ok || flat.parent != nil {
		t.Fatalf("Flat() = parent %v, ok %v: want a root state", flat.parent, ok)
	}
	if got, want := strings.Join(flat.NodeNames(), ","), "n0,n1,n2,n4,n9"; got != want {
		t.Errorf("NodeNames() = %s, want %s", got, want)
	}
	for name, team := range map[string]string{"n0": "a", "n1": "b", "n2": "d"} {
		if got := flat.Node(name).K8sLabels["team"]; got != team {
			t.Errorf("%s has team %q, want %q", name, got, team)
		}
	}
	if flat.Node("n3") != nil || flat.Node("n9") == nil {
		t.Errorf("n3 removed: %v, n9 added: %v", flat.Node("n3") == nil, flat.Node("n9") != nil)
	}
	if ft, st := flat.Topology(), s.Topology(); len(ft.Nodes) != len(st.Nodes) || ft.Nodes[2] != st.Nodes[2] || flat.NodeIndex("n9") != s.NodeIndex("n9") {
		t.Errorf("the flat state's topology is not the overlays': %d nodes vs %d", len(ft.Nodes), len(st.Nodes))
	}
	peer := &Object{Kind: KindBGPPeer, Name: "p", Peer: &apiv3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p"}}}
	if _, ok := s.With(peer).Flat(); ok {
		t.Error("a state with a BGPPeer overlay was flattened")
	}
}
