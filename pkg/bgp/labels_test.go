package bgp

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/rrguard/rrguard/pkg/selector"
)

// TestLabelIndexMatchesEveryNode compares the index's answers with the selector evaluated on
// each node's own labels: one key, a few keys with few combinations (one slot each), keys
// with too many combinations for slots (hostnames), more keys than are indexed, and nodes
// that take part in nothing.
func TestLabelIndexMatchesEveryNode(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var topo Topology
	var classOf []ClassID
	for i := range 300 {
		labels := map[string]string{"host": fmt.Sprintf("h%d", i), "zone": []string{"a", "b", "c"}[rng.Intn(3)]}
		if r := rng.Intn(40); r > 0 {
			labels["rack"] = fmt.Sprint(r)
		}
		if rng.Intn(3) == 0 {
			labels["ssd"] = ""
		}
		topo.Nodes = append(topo.Nodes, &Node{Name: fmt.Sprintf("n%d", i), Labels: labels})
		c := ClassID(0)
		if rng.Intn(10) == 0 {
			c = NoClass
		}
		classOf = append(classOf, c)
	}
	for _, expr := range []string{
		"zone == 'a'",
		"!has(rack)",
		"zone == 'a' && rack in {'1', '2', '3'}",
		"zone != 'b' || !has(rack)",
		"has(ssd) && zone == 'c' && rack != '7'",
		"host in {'h1', 'h2', 'h250'} || rack == '12'", // 301 × 40 combinations: no slots
		"host == 'h3' || (zone == 'a' && has(ssd) && rack == '5' && host != 'h9') || rack == '9'",
		"nope != 'x' && zone == 'a'", // a label no node has
	} {
		sel, err := selector.Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		var x labelIndex
		got := x.matches(&topo, classOf, &sel)
		n := 0
		for i, node := range topo.Nodes {
			want := classOf[i] != NoClass && sel.Matches(selector.NewLabels(node.Labels))
			if got[i] != want {
				t.Errorf("%s on %s %v: index says %v, the selector %v", expr, node.Name, node.Labels, got[i], want)
			}
			if want {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s selects no node: a weak case", expr)
		}
	}
}
