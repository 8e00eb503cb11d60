package selector

import "github.com/projectcalico/calico/lib/std/uniquestr"

// memoKeys is the most label keys a Memo remembers combinations of; a selector that reads more
// is evaluated on each label set.
const memoKeys = 4

// Memo evaluates one selector on many label sets, once per distinct combination of the values
// of the labels it reads: the other labels of a set cannot change the answer. A Memo is not
// safe for concurrent use.
type Memo struct {
	sel  Selector
	keys []uniquestr.Handle
	// one key: the answer per value, and for the label's absence.
	byValue        map[uniquestr.Handle]bool
	absent, absSet bool
	// two to memoKeys keys: the answer per combination.
	byCombination map[combination]bool
}

type combination [memoKeys]struct {
	v  uniquestr.Handle
	ok bool
}

// Memo returns a Memo of s.
func (s Selector) Memo() *Memo {
	m := &Memo{sel: s}
	if s.sel == nil || len(s.keys) > memoKeys {
		return m
	}
	for _, k := range s.keys {
		m.keys = append(m.keys, uniquestr.Make(k))
	}
	if len(m.keys) == 1 {
		m.byValue = map[uniquestr.Handle]bool{}
	} else {
		m.byCombination = map[combination]bool{}
	}
	return m
}

// Matches is s.Matches(l), evaluated once per combination of the values of s's labels.
func (m *Memo) Matches(l Labels) bool {
	switch {
	case m.byValue != nil:
		v, ok := l[m.keys[0]]
		if !ok {
			if !m.absSet {
				m.absent, m.absSet = m.sel.Matches(l), true
			}
			return m.absent
		}
		r, seen := m.byValue[v]
		if !seen {
			r = m.sel.Matches(l)
			m.byValue[v] = r
		}
		return r
	case m.byCombination != nil:
		var c combination
		for i, k := range m.keys {
			c[i].v, c[i].ok = l[k]
		}
		r, seen := m.byCombination[c]
		if !seen {
			r = m.sel.Matches(l)
			m.byCombination[c] = r
		}
		return r
	}
	return m.sel.Matches(l)
}
