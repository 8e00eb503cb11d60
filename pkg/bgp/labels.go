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
	// byClass is the value of each class of classOf (the last class assignment asked about)
	// that all its members share, mixed when they differ, none for a class without members.
	classOf []ClassID
	byClass []int32
	// handles are the values interned, each when a selector first reads it (zero: not yet).
	handles []selector.Handle
}

const (
	mixed int32 = -2
	none  int32 = -3
)

// maxKeys bounds the keys an index keeps (a slice of the nodes each: 20 KB at 5,000 nodes):
// BGPPeers that each read new label keys must not grow it without end. Past it the index
// starts again.
const maxKeys = 256

// key returns the index of label k over the nodes of t, building it on first use.
func (x *labelIndex) key(t *Topology, k string) *keyIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.keyLocked(t, k)
}

// classValues returns, per class of classOf (n classes), the value of label k its members
// share (-1: they have no such label), mixed, or none.
func (x *labelIndex) classValues(t *Topology, k string, classOf []ClassID, n int) []int32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	ki := x.keyLocked(t, k)
	if len(ki.byClass) == n && len(ki.classOf) == len(classOf) && (len(classOf) == 0 || &ki.classOf[0] == &classOf[0]) {
		return ki.byClass
	}
	vals := make([]int32, n)
	for c := range vals {
		vals[c] = none
	}
	for i, c := range classOf {
		if c == NoClass || int(c) >= n {
			continue
		}
		switch v := ki.valueOf[i]; vals[c] {
		case none:
			vals[c] = v
		case v, mixed:
		default:
			vals[c] = mixed
		}
	}
	ki.classOf, ki.byClass = classOf, vals
	return vals
}

// valueHandle returns value v of ki interned.
func (x *labelIndex) valueHandle(ki *keyIndex, v int32) selector.Handle {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ki.handles == nil {
		ki.handles = make([]selector.Handle, len(ki.values))
	}
	if ki.handles[v] == (selector.Handle{}) {
		ki.handles[v] = selector.Intern(ki.values[v])
	}
	return ki.handles[v]
}

func (x *labelIndex) keyLocked(t *Topology, k string) *keyIndex {
	if ki, ok := x.keys[k]; ok {
		return ki
	}
	if len(x.keys) >= maxKeys {
		x.keys = nil
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

// Answers of a selector for a whole class (matches).
const (
	selectsSome int8 = iota // some members, in the answer per node
	selectsNone
	selectsAll
)

// matches reports, per node of t, whether sel selects it (false for nodes of class NoClass,
// which take part in nothing). sel is evaluated on one label set per distinct combination
// of the values of the labels it reads: the node's other labels cannot change the answer.
// classes (nil: unknown) are the classes of classOf: a class whose members share the values
// of those labels (most are: a zone, an operating system) is answered once for all of them,
// in byClass (selectsAll or selectsNone; nil without classes); out holds the answers of the
// other classes' members, and is nil when there are none.
func (x *labelIndex) matches(t *Topology, classOf []ClassID, classes []Class, sel *selector.Selector) (out []bool, byClass []int8) {
	keys := sel.Keys()
	if classes == nil || len(keys) > indexedKeys {
		out = make([]bool, len(t.Nodes))
	}
	if len(keys) > indexedKeys {
		for i, n := range t.Nodes {
			out[i] = classOf[i] != NoClass && sel.Matches(n.prepared())
		}
		return out, nil
	}
	idx := make([]*keyIndex, len(keys))
	var keyHandles [indexedKeys]selector.Handle
	for j, k := range keys {
		idx[j], keyHandles[j] = x.key(t, k), selector.Intern(k)
	}
	// answer evaluates sel on the label set of one combination of values (one label set,
	// reused).
	var labels selector.Labels
	answer := func(combo [indexedKeys]int32) bool {
		var ks, vs [indexedKeys]selector.Handle
		n := 0
		for j := range keys {
			if combo[j] >= 0 {
				ks[n], vs[n] = keyHandles[j], x.valueHandle(idx[j], combo[j])
				n++
			}
		}
		labels.SetHandles(ks[:n], vs[:n])
		return sel.Matches(&labels)
	}
	// Few enough combinations: one slot each, numbered by the values (mixed radix, absence
	// included), which costs a few nanoseconds where a map of combinations costs ~60.
	width := 1
	for j := range idx {
		n := len(idx[j].values) + 1
		if width > denseCombinations(len(t.Nodes))/n {
			width = 0
			break
		}
		width *= n
	}
	// inSlot is answer, once per slot, for combo in slot (width > 0).
	var memo []int8 // per slot: 0 not evaluated yet, 1 no, 2 yes
	inSlot := func(slot int32, combo [indexedKeys]int32) bool {
		if memo == nil {
			memo = make([]int8, width)
		}
		if memo[slot] == 0 {
			memo[slot] = 1
			if answer(combo) {
				memo[slot] = 2
			}
		}
		return memo[slot] == 2
	}
	seen := map[[indexedKeys]int32]bool{}
	cached := func(combo [indexedKeys]int32) bool {
		if width > 0 {
			slot := int32(0)
			for j := range idx {
				slot = slot*int32(len(idx[j].values)+1) + combo[j] + 1
			}
			return inSlot(slot, combo)
		}
		r, ok := seen[combo]
		if !ok {
			r = answer(combo)
			seen[combo] = r
		}
		return r
	}
	// comboOf is node i's combination of values.
	comboOf := func(i int) (combo [indexedKeys]int32) {
		for j := range idx {
			combo[j] = idx[j].valueOf[i]
		}
		return combo
	}
	if classes != nil {
		values := make([][]int32, len(keys))
		for j, k := range keys {
			values[j] = x.classValues(t, k, classOf, len(classes))
		}
		byClass = make([]int8, len(classes))
		for c := range classes {
			var combo [indexedKeys]int32
			uniform := true
			for j := range keys {
				combo[j] = values[j][c]
				uniform = uniform && combo[j] != mixed
			}
			members := classes[c].Members
			if !uniform {
				if out == nil {
					out = make([]bool, len(t.Nodes))
				}
				for _, m := range members {
					out[m] = cached(comboOf(m))
				}
				continue
			}
			byClass[c] = selectsNone
			if len(members) > 0 && cached(combo) {
				byClass[c] = selectsAll
			}
		}
		return out, byClass
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
		return out, nil
	}
	if width > 0 {
		// Slots key by key, a tight loop over each key's values.
		slots := make([]int32, len(t.Nodes))
		for j := range idx {
			radix, valueOf := int32(len(idx[j].values)+1), idx[j].valueOf[:len(slots)]
			for i, v := range valueOf {
				slots[i] = slots[i]*radix + v + 1
			}
		}
		for i, slot := range slots {
			if classOf[i] != NoClass {
				out[i] = inSlot(slot, comboOf(i))
			}
		}
		return out, nil
	}
	for i := range t.Nodes {
		if classOf[i] != NoClass {
			out[i] = cached(comboOf(i))
		}
	}
	return out, nil
}

// denseCombinations is the most combinations of label values matches numbers one slot each
// for (a byte per slot): four per node, at least 4,096.
func denseCombinations(nodes int) int { return max(4096, 4*nodes) }
