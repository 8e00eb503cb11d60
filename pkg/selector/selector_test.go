package selector

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseAndEvaluate(t *testing.T) {
	rr := map[string]string{"route-reflector": "true", "zone": "a", "kubernetes.io/hostname": "n1"}
	client := map[string]string{"zone": "b", "kubernetes.io/hostname": "n2"}
	cases := map[string]struct {
		expr       string
		canon      string
		rr, client bool
		keys       []string
	}{
		"has":            {"has(route-reflector)", "has(route-reflector)", true, false, []string{"route-reflector"}},
		"not has":        {"!has(route-reflector)", "!has(route-reflector)", false, true, []string{"route-reflector"}},
		"empty is all":   {"", "all()", true, true, nil},
		"all":            {"all()", "all()", true, true, nil},
		"eq single":      {"zone == 'a'", `zone == "a"`, true, false, []string{"zone"}},
		"ne absent":      {"route-reflector != 'true'", `route-reflector != "true"`, false, true, []string{"route-reflector"}},
		"in":             {"zone in {'a','c'}", `zone in {"a", "c"}`, true, false, []string{"zone"}},
		"not in absent":  {"route-reflector not in {'x'}", `route-reflector not in {"x"}`, true, true, []string{"route-reflector"}},
		"notin":          {"zone notin {'a'}", `zone not in {"a"}`, false, true, []string{"zone"}},
		"precedence":     {"has(route-reflector) || zone == 'b' && has(nope)", `(has(route-reflector) || (zone == "b" && has(nope)))`, true, false, []string{"nope", "route-reflector", "zone"}},
		"starts with":    {"kubernetes.io/hostname starts with 'n'", `kubernetes.io/hostname starts with "n"`, true, true, []string{"kubernetes.io/hostname"}},
		"endswith":       {"kubernetes.io/hostname endswith '2'", `kubernetes.io/hostname ends with "2"`, false, true, []string{"kubernetes.io/hostname"}},
		"contains":       {"zone contains 'a'", `zone contains "a"`, true, false, []string{"zone"}},
		"eq absent":      {"missing == ''", `missing == ""`, false, false, []string{"missing"}},
		"tabs":           {"zone\t==\t'a'", `zone == "a"`, true, false, []string{"zone"}},
		"double quotes":  {`zone == "a"`, `zone == "a"`, true, false, []string{"zone"}},
		"parens and not": {"!(zone == 'a' || zone == 'b')", `!(zone == "a" || zone == "b")`, false, false, []string{"zone"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(c.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.expr, err)
			}
			if got := s.String(); got != c.canon {
				t.Errorf("String() = %q, want %q", got, c.canon)
			}
			if got := s.Evaluate(rr); got != c.rr {
				t.Errorf("Evaluate(reflector labels) = %v, want %v", got, c.rr)
			}
			if got := s.Matches(NewLabels(client)); got != c.client {
				t.Errorf("Matches(client labels) = %v, want %v", got, c.client)
			}
			if got := s.Keys(); !reflect.DeepEqual(got, c.keys) && !(len(got) == 0 && len(c.keys) == 0) {
				t.Errorf("Keys() = %v, want %v", got, c.keys)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ expr, want string }{
		"unclosed has":       {"has(route-reflector", "does not parse"},
		"newline":            {"has(a) &&\nhas(b)", "line break"},
		"trailing newline":   {"has(route-reflector)\n", "line break"},
		"space before paren": {"has (a)", "does not parse"},
		"bad operator":       {"zone = 'a'", "does not parse"},
		"unquoted value":     {"zone == a", "does not parse"},
		"dangling and":       {"has(a) &&", "does not parse"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(c.expr)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", c.expr, s.String())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if s.Evaluate(map[string]string{"a": "x", "b": "y"}) {
				t.Errorf("a selector that failed to parse must match nothing")
			}
		})
	}
}

func BenchmarkMatches(b *testing.B) {
	s, err := Parse("!has(route-reflector) && zone in {'a','b','c'}")
	if err != nil {
		b.Fatal(err)
	}
	l := NewLabels(map[string]string{"zone": "b", "kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux"})
	b.ReportAllocs()
	for b.Loop() {
		s.Matches(l)
	}
}

// TestMatchesPrepared: a prepared label set answers as the plain map does, small (searched in
// order) or large (indexed), read by many goroutines at once as the webhook's requests read a
// node's labels (run with -race), and every time after its values are first interned.
func TestMatchesPrepared(t *testing.T) {
	exprs := []string{
		"has(route-reflector)", "!has(route-reflector)", "zone == 'b'", "zone in {'a','b'}",
		"label-30 == 'value-30'", "label-30 starts with 'value'", "label-7 != 'x' && has(label-39)",
		"missing not in {'x'}", "kubernetes.io/hostname ends with '-1'",
	}
	var sels []Selector
	for _, e := range exprs {
		s, err := Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		sels = append(sels, s)
	}
	small := map[string]string{"zone": "b", "kubernetes.io/hostname": "node-1"}
	large := map[string]string{"route-reflector": "true", "zone": "c", "kubernetes.io/hostname": "node-2"}
	for i := range 40 {
		large[fmt.Sprintf("label-%d", i)] = fmt.Sprintf("value-%d", i)
	}
	for _, labels := range []map[string]string{nil, small, large} {
		l := NewLabels(labels)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for round := range 3 {
					for k, s := range sels {
						if got, want := s.Matches(l), s.Evaluate(labels); got != want {
							t.Errorf("round %d, %q on %d labels: Matches %v, Evaluate %v", round, exprs[k], len(labels), got, want)
						}
					}
				}
			})
		}
		wg.Wait()
	}
	// The same label sets made of handles, one reused label set for all (SetHandles): each
	// answers as the map it was made from, whatever the set before it held.
	var reused Labels
	for _, labels := range []map[string]string{large, nil, small, large, small} {
		var keys, values []Handle
		for k, v := range labels {
			keys, values = append(keys, Intern(k)), append(values, Intern(v))
		}
		reused.SetHandles(keys, values)
		for k, s := range sels {
			if got, want := s.Matches(&reused), s.Evaluate(labels); got != want {
				t.Errorf("%q on %d labels made of handles: Matches %v, Evaluate %v", exprs[k], len(labels), got, want)
			}
		}
	}
}

// TestParseRefusesOverLongSelectors: a selector over Calico's limit is refused before its
// parser runs; 850,000 nested parentheses once overflowed the goroutine stack.
func TestParseRefusesOverLongSelectors(t *testing.T) {
	nested := strings.Repeat("(", 850_000) + "has(a)" + strings.Repeat(")", 850_000)
	if _, err := Parse(nested); err == nil || !strings.Contains(err.Error(), "longer than Calico's limit of 1024") {
		t.Fatalf("Parse of 1.7 MB of parentheses: %v", err)
	}
	ok := strings.Repeat("(", 500) + "has(a)" + strings.Repeat(")", 500)
	if _, err := Parse(ok); err != nil {
		t.Fatalf("Parse of %d characters: %v", len(ok), err)
	}
}

// TestParseCacheIsBounded: parses are remembered up to a bound whatever the input (in
// number and in text), an over-long selector is never kept, and a remembered parse answers as
// a fresh one does.
func TestParseCacheIsBounded(t *testing.T) {
	long := func(i int) string { return fmt.Sprintf("k%d == '%s'", i, strings.Repeat("v", MaxLength-20)) }
	for _, expr := range []func(int) string{func(i int) string { return fmt.Sprintf("rack == 'r%d'", i) }, long} {
		for i := range parsed.max + 10 {
			if _, err := Parse(expr(i)); err != nil {
				t.Fatal(err)
			}
			parsed.mu.Lock()
			n, size := len(parsed.m), 0
			for k := range parsed.m {
				size += len(k)
			}
			parsed.mu.Unlock()
			if n > parsed.max || size > parsed.maxBytes {
				t.Fatalf("%d parses of %d bytes kept, want at most %d of %d bytes", n, size, parsed.max, parsed.maxBytes)
			}
		}
	}
	tooLong := "a == '" + strings.Repeat("x", MaxLength) + "'"
	if _, err := Parse(tooLong); err == nil {
		t.Fatal("an over-long selector parsed")
	}
	parsed.mu.Lock()
	_, kept := parsed.m[tooLong]
	parsed.mu.Unlock()
	if kept {
		t.Error("an over-long selector was kept")
	}
	for _, expr := range []string{"rack == 'r1'", "has(route-reflector) && zone in {'a','b'}", "a ==", "!has(x)"} {
		first, err1 := Parse(expr)
		again, err2 := Parse(expr)
		fresh, err3 := parse(expr)
		if first.String() != fresh.String() || again.String() != fresh.String() || fmt.Sprint(err1) != fmt.Sprint(err3) || fmt.Sprint(err2) != fmt.Sprint(err3) {
			t.Errorf("%q: cached %q/%v, fresh %q/%v", expr, again.String(), err2, fresh.String(), err3)
		}
		l := NewLabels(map[string]string{"rack": "r1", "zone": "a", "route-reflector": "true"})
		if first.sel != nil && first.Matches(l) != fresh.Matches(l) {
			t.Errorf("%q: cached and fresh parses disagree on %v", expr, l)
		}
	}
}
