package validate

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

func TestTruncate(t *testing.T) {
	cases := map[string]struct {
		in   string
		max  int
		want string
	}{
		"short stays":             {in: "has(a)", max: 10, want: "has(a)"},
		"exactly max stays":       {in: "abcdef", max: 6, want: "abcdef"},
		"cut with an ellipsis":    {in: "abcdefghij", max: 7, want: "abcd…"},
		"never inside a rune":     {in: "ééééé", max: 6, want: "é…"},
		"max below the ellipsis":  {in: "abcdef", max: 2, want: "…"},
		"multi-byte at the edge":  {in: "aé" + strings.Repeat("b", 10), max: 5, want: "a…"},
		"empty":                   {in: "", max: 3, want: ""},
		"four-byte runes survive": {in: strings.Repeat("𝄞", 10), max: 12, want: "𝄞𝄞…"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := Truncate(c.in, c.max)
			if got != c.want || !utf8.ValidString(got) {
				t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
			}
		})
	}
	if q := Quote(strings.Repeat("x", 100000)); len(q) > MaxQuote+40 || !strings.HasSuffix(q, "(100000 bytes in all)") {
		t.Errorf("Quote of 100 KB: %d bytes: %.80s…", len(q), q)
	}
}

// TestHugeSelectorIsNotEchoed: a 100 KB selector is reported, but no finding repeats it whole.
func TestHugeSelectorIsNotEchoed(t *testing.T) {
	huge := "a == '" + strings.Repeat("x", 100000) + "'"
	before := model.NewSnapshot(calico.NewState(objs(t, seedDocs)))
	got := New(Config{}).Evaluate(t.Context(), model.Change{Operation: model.Create, Object: obj(t, peer("huge", huge, huge))}, before)
	if len(got) == 0 {
		t.Fatal("no finding about a 100 KB selector")
	}
	for _, f := range got {
		if len(f.Message) > 1000 {
			t.Errorf("[%s] message of %d bytes: %.120s…", f.Rule, len(f.Message), f.Message)
		}
	}
}
