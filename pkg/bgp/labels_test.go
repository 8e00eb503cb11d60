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
// that take part in nothing; without classes, and with classes whose members share the
// labels' values (answered once) or not.
func TestLabelIndexMatchesEveryNode(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var topo Topology
	var classOf []ClassID
	classes := make([]Class, 8)
	for i := range 300 {
		zone := rng.Intn(3)
		labels := map[string]string{"host": fmt.Sprintf("h%d", i), "zone": []string{"a", "b", "c"}[zone]}
		if r := rng.Intn(40); r > 0 {
			labels["rack"] = fmt.Sprint(r)
		}
		if rng.Intn(3) == 0 {
			labels["ssd"] = ""
		}
		topo.Nodes = append(topo.Nodes, &Node{Name: fmt.Sprintf("n%d", i), Labels: labels})
		// Classes 0-2 by zone, 3-6 at random, 7 empty.
		c := ClassID(zone)
		switch r := rng.Intn(10); {
		case r == 0:
			c = NoClass
		case r < 4:
			c = ClassID(3 + rng.Intn(4))
		}
		classOf = append(classOf, c)
		if c != NoClass {
			classes[c].Members = append(classes[c].Members, i)
		}
	}
	for _, expr := range []string{
		"zone == 'a'",
		"!has(rack)",
		"zone == 'a' && rack in {'1', '2', '3'}",
		"zone != 'b' || !has(rack)",
		"zone != 'b' && !has(nope)",
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
		for _, cs := range [][]Class{nil, classes, classes} { // twice: the per-class values are kept
			out, byClass := x.matches(&topo, classOf, cs, &sel)
			if (cs == nil) != (byClass == nil) {
				t.Fatalf("%s: classes given %v, answers per class %v", expr, cs != nil, byClass)
			}
			n := 0
			for i, node := range topo.Nodes {
				want := classOf[i] != NoClass && sel.Matches(selector.NewLabels(node.Labels))
				var got bool
				switch {
				case classOf[i] != NoClass && byClass != nil && byClass[classOf[i]] != selectsSome:
					got = byClass[classOf[i]] == selectsAll
				case out == nil:
					t.Fatalf("%s: no answer for %s (class %d)", expr, node.Name, classOf[i])
				default:
					got = out[i]
				}
				if got != want {
					t.Errorf("%s on %s %v (classes %v): index says %v, the selector %v", expr, node.Name, node.Labels, cs != nil, got, want)
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
}

// TestLabelIndexKeepsBoundedKeys: BGPPeers reading ever new label keys (a review each) must
// not grow the index without end.
func TestLabelIndexKeepsBoundedKeys(t *testing.T) {
	topo := Topology{Nodes: []*Node{{Name: "n0", Labels: map[string]string{"k7": "v"}}}}
	var x labelIndex
	for i := range 3 * maxKeys {
		k := fmt.Sprintf("k%d", i)
		ki := x.key(&topo, k)
		if want := int32(-1); i == 7 {
			want = 0
			if ki.valueOf[0] != want || ki.values[0] != "v" {
				t.Fatalf("%s: %v %v", k, ki.values, ki.valueOf)
			}
		} else if ki.valueOf[0] != want {
			t.Fatalf("%s: %v %v", k, ki.values, ki.valueOf)
		}
		if len(x.keys) > maxKeys {
			t.Fatalf("after %d keys the index keeps %d, bound %d", i+1, len(x.keys), maxKeys)
		}
	}
}
