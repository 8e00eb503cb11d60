package selector

import (
	"strings"
	"testing"
)

// FuzzParse: any string either fails to parse with an error or parses to a selector whose
// canonical form parses again to the same canonical form and the same answers; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "all()", "has(route-reflector)", "!has(route-reflector)", "route-reflector == 'true'",
		"zone in {'a', 'b'} && !has(x)", "a == 'b' || (c != 'd' && has(e))", "k contains 'x'",
		"k starts with 'a' && k ends with 'z'", "global()", "has(projectcalico.org/orchestrator)",
		"a not in {}", "!!has(a)", "x == \"é\"", "((((a == 'b'))))", "a == 'b'\nc == 'd'",
	} {
		f.Add(s, "route-reflector", "true")
	}
	f.Fuzz(func(t *testing.T, expr, key, value string) {
		s, err := Parse(expr)
		if err != nil {
			if !s.IsZero() {
				t.Fatalf("Parse(%q) failed (%v) but returned a selector", expr, err)
			}
			return
		}
		canon := s.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, expr, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q -> %q", expr, canon, again.String())
		}
		for _, labels := range []map[string]string{nil, {key: value}, {key: value, "route-reflector": "true"}, {strings.ToUpper(key): value}} {
			if got, want := again.Evaluate(labels), s.Evaluate(labels); got != want {
				t.Fatalf("%q and its canonical form %q disagree on %v: %v vs %v", expr, canon, labels, want, got)
			}
			if got, want := s.Matches(NewLabels(labels)), s.Evaluate(labels); got != want {
				t.Fatalf("%q: Matches %v, Evaluate %v on %v", expr, got, want, labels)
			}
			// The answer depends only on the labels Keys names (what the label index of
			// pkg/bgp relies on).
			read := map[string]string{}
			for _, k := range s.Keys() {
				if v, ok := labels[k]; ok {
					read[k] = v
				}
			}
			if got, want := s.Evaluate(read), s.Evaluate(labels); got != want {
				t.Fatalf("%q reads more than its keys %v: %v on %v, %v on %v", expr, s.Keys(), got, read, want, labels)
			}
		}
	})
}
