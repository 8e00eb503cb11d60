// Package selector is Calico's label-selector language, exactly as calico-node parses and
// evaluates it: it wraps Calico's own parser (libcalico-go/lib/selector) so that rrguard and
// calico-node can never disagree on what a BGPPeer selects. It adds what rrguard needs on top:
// clear parse errors, the label keys a selector mentions, and fast evaluation on label sets
// prepared once per node.
package selector

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/projectcalico/calico/lib/std/uniquestr"
	"github.com/projectcalico/calico/libcalico-go/lib/selector/parser"
)

// MaxLength is the longest selector Calico's API accepts.
const MaxLength = 1024

// Selector is a parsed Calico selector. The zero value matches nothing.
type Selector struct {
	sel  *parser.Selector
	keys []string
}

// Parse parses expr with Calico's grammar. "" (or only spaces) means all(). A selector longer
// than MaxLength is refused unparsed: Calico's API refuses it, and its recursive parser's
// cost (and stack, with deeply nested parentheses) grows with the input.
func Parse(expr string) (Selector, error) {
	if len(expr) > MaxLength {
		return parse(expr) // refused unparsed, and not kept
	}
	if r, ok := parsed.get(expr); ok {
		return r.sel, r.err
	}
	sel, err := parse(expr)
	parsed.put(expr, parseResult{sel, err})
	return sel, err
}

// parsed remembers recent parses: a BGPPeer's selectors are parsed when admission judges it,
// again when the informer delivers it, and at every full build of the cluster's model (2,000
// selectors with 1,000 rack peers, 30 KB of text). A parsed selector is never changed, so
// callers share it. A parse takes about six times its text's length in memory (6 KB for a
// selector of Calico's longest): 512 KiB of text keep it near 3 MB whatever the input.
var parsed = parseCache{max: 4096, maxBytes: 512 << 10}

type parseResult struct {
	sel Selector
	err error
}

// parseCache is a map of at most max entries and maxBytes of selector text, emptied when
// full: bounded whatever the input, and cheap while a cluster's selectors fit.
type parseCache struct {
	mu            sync.Mutex
	m             map[string]parseResult
	bytes         int
	max, maxBytes int
}

func (c *parseCache) get(expr string) (parseResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[expr]
	return r, ok
}

func (c *parseCache) put(expr string, r parseResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[expr]; ok {
		return
	}
	if c.m == nil || len(c.m) >= c.max || c.bytes+len(expr) > c.maxBytes {
		c.m, c.bytes = make(map[string]parseResult, min(c.max, 256)), 0
	}
	c.m[expr] = r
	c.bytes += len(expr)
}

func parse(expr string) (Selector, error) {
	if len(expr) > MaxLength {
		return Selector{}, fmt.Errorf("selector of %d characters is longer than Calico's limit of %d: not parsed", len(expr), MaxLength)
	}
	if i := strings.IndexAny(expr, "\r\n"); i >= 0 {
		return Selector{}, fmt.Errorf("selector %q has a line break at offset %d: Calico allows only spaces and tabs between tokens (write it on one line; in YAML quote it on one line)", expr, i)
	}
	sel, err := parser.Parse(expr)
	if err != nil {
		return Selector{}, fmt.Errorf("selector %q does not parse: %v", expr, err)
	}
	kc := keyCollector{}
	sel.Root().AcceptVisitor(kc)
	keys := make([]string, 0, len(kc))
	for k := range kc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return Selector{sel: sel, keys: keys}, nil
}

// Evaluate reports whether the selector matches a label set.
func (s Selector) Evaluate(labels map[string]string) bool {
	if s.sel == nil {
		return false
	}
	return s.sel.Evaluate(labels)
}

// Matches is Evaluate on a prepared label set: the fast path for many evaluations.
func (s Selector) Matches(l *Labels) bool {
	if s.sel == nil {
		return false
	}
	return s.sel.EvaluateLabels(l)
}

// String is Calico's canonical form of the selector ("" for the zero value).
func (s Selector) String() string {
	if s.sel == nil {
		return ""
	}
	return s.sel.String()
}

// Keys returns the label keys the selector mentions, sorted.
func (s Selector) Keys() []string { return s.keys }

// IsZero reports whether s is the zero Selector (nothing parsed).
func (s Selector) IsZero() bool { return s.sel == nil }

// Labels is a label set prepared for repeated evaluation, safe for concurrent use. Calico's
// evaluator compares interned strings (uniquestr.Handle): keys are interned once, and each
// value the first time a selector reads it, so that a value no selector reads (a node's
// hostname, say) is never interned: interning a string met for the first time is the
// expensive part of preparing a label set.
type Labels struct {
	entries []labelEntry
	// index finds an entry by key in a large label set (nil: entries are searched in order).
	index map[uniquestr.Handle]int
}

type labelEntry struct {
	key    uniquestr.Handle
	value  string
	handle atomic.Pointer[uniquestr.Handle] // value, interned on first read
	// interned holds the value's handle where it was given (SetHandles): handle points here.
	interned uniquestr.Handle
}

// indexedLabels is the most labels a label set is searched in order for.
const indexedLabels = 16

// NewLabels prepares a label set.
func NewLabels(m map[string]string) *Labels {
	l := &Labels{entries: make([]labelEntry, len(m))}
	i := 0
	for k, v := range m {
		l.entries[i].key, l.entries[i].value = uniquestr.Make(k), v
		i++
	}
	l.indexEntries()
	return l
}

// indexEntries indexes a large label set's entries by key (indexedLabels).
func (l *Labels) indexEntries() {
	l.index = nil
	if len(l.entries) > indexedLabels {
		l.index = make(map[uniquestr.Handle]int, len(l.entries))
		for i := range l.entries {
			l.index[l.entries[i].key] = i
		}
	}
}

// Handle is an interned label key or value (Intern). A label set made of handles
// (SetHandles) is evaluated without interning anything: where one selector is evaluated on
// many small label sets that share their values, interning was most of the work.
type Handle = uniquestr.Handle

// Intern returns the handle of s.
func Intern(s string) Handle { return uniquestr.Make(s) }

// SetHandles makes l (a zero Labels, or one set before) the label set whose keys[i] has
// value values[i], the keys all different, reusing its memory: for a caller that evaluates
// label set after label set, one at a time (l must not be in use).
func (l *Labels) SetHandles(keys, values []Handle) {
	if cap(l.entries) < len(keys) {
		l.entries = make([]labelEntry, len(keys))
	}
	l.entries = l.entries[:len(keys)]
	for i := range keys {
		e := &l.entries[i]
		e.key, e.value, e.interned = keys[i], values[i].Value(), values[i]
		e.handle.Store(&e.interned)
	}
	l.indexEntries()
}

// GetHandle implements Calico's parser.Labels.
func (l *Labels) GetHandle(name uniquestr.Handle) (uniquestr.Handle, bool) {
	e := l.entry(name)
	if e == nil {
		return uniquestr.Handle{}, false
	}
	if h := e.handle.Load(); h != nil {
		return *h, true
	}
	h := uniquestr.Make(e.value)
	e.handle.CompareAndSwap(nil, &h)
	return h, true
}

func (l *Labels) entry(name uniquestr.Handle) *labelEntry {
	if l.index != nil {
		if i, ok := l.index[name]; ok {
			return &l.entries[i]
		}
		return nil
	}
	for i := range l.entries {
		if l.entries[i].key == name {
			return &l.entries[i]
		}
	}
	return nil
}

type keyCollector map[string]struct{}

func (kc keyCollector) Visit(n interface{}) {
	switch n := n.(type) {
	case *parser.LabelEqValueNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelNeValueNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelContainsValueNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelStartsWithValueNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelEndsWithValueNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.HasNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelInSetNode:
		kc[n.LabelName.Value()] = struct{}{}
	case *parser.LabelNotInSetNode:
		kc[n.LabelName.Value()] = struct{}{}
	}
}
