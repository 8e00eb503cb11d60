package validate

import (
	"fmt"
	"unicode/utf8"
)

// MaxQuote is how much of a user's value (a selector, a name) a message repeats: enough to
// recognise it, never a 100 KB string echoed into logs, events and kubectl output.
const MaxQuote = 200

// Truncate cuts s to at most max bytes, on a UTF-8 boundary, ending in "…" when it cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Quote is s as a quoted Go string, cut to MaxQuote bytes with the length left out said.
func Quote(s string) string {
	if len(s) <= MaxQuote {
		return fmt.Sprintf("%q", s)
	}
	t := Truncate(s, MaxQuote)
	return fmt.Sprintf("%q (%d bytes in all)", t, len(s))
}
