package bgp

import (
	"sync"

	"github.com/rrguard/rrguard/pkg/selector"
)

// labelIndex lists the nodes of a topology by the value of each label key a new selector has
// read so far, so that a selector is evaluated once per distinct value (or combination of
// values) of the labels it reads, not once per node: a 5,000-node cluster has a handful of
// zones and one operating system, though every node has a hostname of its own. An index is
// built one key at a time, on first use, and shared by the analyses of the same nodes
// (invariant 5 of incremental.go); it is safe for concurrent use.
type labelIndex struct {
	mu   sync.Mutex
	keys map[string]*keyIndex
}

// keyIndex is one key's index: the distinct values of the label, and each node's value (an
// index into values; -1: the node has no such label).
type keyIndex struct {
	values  []string
	valueOf []int32
}

// key returns the index of label k over the nodes of t, building it on first use.
func (x *labelIndex) key(t *Topology, k string) *keyIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ki, ok := x.keys[k]; ok {
		return ki
	}
	ki := &keyIndex{valueOf: make([]int32, len(t.Nodes))}
	ids := map[string]int32{}
	for i, n := range t.Nodes {
		v, ok := n.Labels[k]
		if !ok {
			ki.valueOf[i] = -1
			continue
		}
		id, seen := ids[v]
		if !seen {
			id = int32(len(ki.values))
			ids[v] = id
			ki.values = append(ki.values, v)
		}
		ki.valueOf[i] = id
	}
	if x.keys == nil {
		x.keys = map[string]*keyIndex{}
	}
	x.keys[k] = ki
	return ki
}

// indexedKeys is the most label keys a selector may read to be evaluated per combination of
// their values; one that reads more is evaluated on every node.
const indexedKeys = 4

// matches reports, per node of t, whether sel selects it (false for nodes of class NoClass,
// which take part in nothing). sel is evaluated on one label set per distinct combination
// of the values of the labels it reads: the node's other labels cannot change the answer.
func (x *labelIndex) matches(t *Topology, classOf []ClassID, sel *selector.Selector) []bool {
	out := make([]bool, len(t.Nodes))
	keys := sel.Keys()
	if len(keys) > indexedKeys {
		for i, n := range t.Nodes {
			out[i] = classOf[i] != NoClass && sel.Matches(n.prepared())
		}
		return out
	}
	idx := make([]*keyIndex, len(keys))
	for j, k := range keys {
		idx[j] = x.key(t, k)
	}
	// answer evaluates sel on the label set of one combination of values.
	answer := func(combo [indexedKeys]int32) bool {
		labels := make(map[string]string, len(keys))
		for j, k := range keys {
			if combo[j] >= 0 {
				labels[k] = idx[j].values[combo[j]]
			}
		}
		return sel.Matches(selector.NewLabels(labels))
	}
	if len(keys) == 1 {
		// The common case: one answer per value, and one for the label's absence.
		byValue := make([]bool, len(idx[0].values))
		for v := range byValue {
			byValue[v] = answer([indexedKeys]int32{int32(v)})
		}
		absent := answer([indexedKeys]int32{-1})
		for i, v := range idx[0].valueOf {
			switch {
			case classOf[i] == NoClass:
			case v < 0:
				out[i] = absent
			default:
				out[i] = byValue[v]
			}
		}
		return out
	}
	// Few enough combinations: one slot each, numbered by the values (mixed radix, absence
	// included), which costs a few nanoseconds a node where a map of combinations costs ~60.
	width := 1
	for j := range idx {
		n := len(idx[j].values) + 1
		if width > denseCombinations(len(t.Nodes))/n {
			width = 0
			break
		}
		width *= n
	}
	if width > 0 {
		memo := make([]int8, width) // 0: not evaluated yet, 1: no, 2: yes
		for i := range t.Nodes {
			if classOf[i] == NoClass {
				continue
			}
			slot := 0
			for j := range idx {
				slot = slot*(len(idx[j].values)+1) + int(idx[j].valueOf[i]+1)
			}
			if memo[slot] == 0 {
				var combo [indexedKeys]int32
				for j := range idx {
					combo[j] = idx[j].valueOf[i]
				}
				memo[slot] = 1
				if answer(combo) {
					memo[slot] = 2
				}
			}
			out[i] = memo[slot] == 2
		}
		return out
	}
	seen := map[[indexedKeys]int32]bool{}
	for i := range t.Nodes {
		if classOf[i] == NoClass {
			continue
		}
		var combo [indexedKeys]int32
		for j := range idx {
			combo[j] = idx[j].valueOf[i]
		}
		r, ok := seen[combo]
		if !ok {
			r = answer(combo)
			seen[combo] = r
		}
		out[i] = r
	}
	return out
}

// denseCombinations is the most combinations of label values matches numbers one slot each
// for (a byte per slot): four per node, at least 4,096.
func denseCombinations(nodes int) int { return max(4096, 4*nodes) }
