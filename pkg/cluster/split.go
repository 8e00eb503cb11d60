package cluster

import (
	"bytes"
	"regexp"
)

// splitDocuments calls doc with each document of raw, as utilyaml.YAMLReader splits them
// (FuzzSplitDocuments), without copying them; it stops when doc returns false. It returns
// false, before calling doc, for what it leaves to that reader: an input with a carriage
// return (the reader drops it before a line feed) or a "---" line followed by other than a
// comment (the reader refuses it).
func splitDocuments(raw []byte, doc func([]byte) bool) bool {
	if bytes.IndexByte(raw, '\r') >= 0 {
		return false
	}
	// First pass: check every separator line, so that nothing is handed on for an input the
	// reader refuses.
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if after, ok := bytes.CutPrefix(line, []byte("---")); ok {
			if t := bytes.TrimSpace(after); len(t) > 0 && t[0] != '#' {
				return false
			}
		}
	}
	start := 0
	for pos := 0; pos < len(raw); {
		end := len(raw)
		if i := bytes.IndexByte(raw[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		if bytes.HasPrefix(raw[pos:end], []byte("---")) && pos > start {
			// A separator ends the document before it and is dropped; one that starts a
			// document (nothing before it) is kept, as the reader does.
			if !doc(raw[start:pos]) {
				return true
			}
			start = end
		}
		pos = end
	}
	if start < len(raw) {
		last := raw[start:]
		if last[len(last)-1] != '\n' {
			// The reader ends every line with a line feed, the last one too.
			last = append(last[:len(last):len(last)], '\n')
		}
		doc(last)
	}
	return true
}

// leadingLines counts the lines at the start of a document before its content: blank lines,
// comments and a separator, so that a document's line is where its first field is.
func leadingLines(b []byte) int {
	n := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.HasPrefix(line, []byte("---")) {
			return n
		}
		n++
	}
	return 0
}

// onlyComments reports whether a document holds nothing but YAML comment lines and blanks,
// so that it counts as empty.
func onlyComments(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// blockKey matches the first line of an item that is a block mapping, as kubectl writes every
// item ("apiVersion: v1"): a plain key and ": ". Only such items are cut out: a flow
// collection or a scalar in a sequence entry may read otherwise at a document's margin.
var blockKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]*:( |\n|$)`)

// splitList splits a document that is a List as `kubectl get -o yaml` writes it (a top-level
// "items:" line followed by items, each a "- " line and lines indented by two spaces) into
// its items, each dedented into a document of its own, with the line of the document each
// starts on (0-based); header is the document without them. ok is false, and the document is
// read whole, for anything else or anything a document of its own might read differently:
// anchors and aliases (an item may use one defined elsewhere), tabs, lines of other
// indentation, a quote left open at the end of a line (FuzzSplitList).
func splitList(doc []byte) (header []byte, items [][]byte, lines []int, ok bool) {
	start := bytes.Index(doc, []byte("\nitems:\n"))
	if start < 0 {
		if !bytes.HasPrefix(doc, []byte("items:\n")) {
			return nil, nil, nil, false
		}
		start = -1
	}
	if bytes.Count(doc, []byte("\nitems:")) > 1 || bytes.ContainsAny(doc, "&*\t") {
		return nil, nil, nil, false
	}
	region := start + len("\nitems:\n") // the first item's line
	line := bytes.Count(doc[:region], []byte{'\n'})
	pos := region
	var cur []byte
	for pos < len(doc) {
		end := len(doc)
		if i := bytes.IndexByte(doc[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		l := doc[pos:end]
		if bytes.Count(l, []byte{'"'})%2 == 1 || bytes.Count(l, []byte{'\''})%2 == 1 {
			// A quoted scalar may go on over the next lines, even at the margin: read whole.
			return nil, nil, nil, false
		}
		switch {
		case bytes.HasPrefix(l, []byte("- ")):
			if !blockKey.Match(l[2:]) {
				return nil, nil, nil, false // a flow collection, a scalar, …: read whole
			}
			if cur != nil {
				items = append(items, cur)
			}
			cur = append(make([]byte, 0, 1024), l[2:]...)
			lines = append(lines, line)
		case cur != nil && bytes.HasPrefix(l, []byte("  ")):
			if d := l[2:]; bytes.HasPrefix(d, []byte("---")) || bytes.HasPrefix(d, []byte("...")) || bytes.HasPrefix(d, []byte("%")) {
				return nil, nil, nil, false // at the margin of a document of its own: a marker
			}
			cur = append(cur, l[2:]...)
		case cur != nil && len(bytes.TrimSpace(l)) == 0:
			cur = append(cur, '\n')
		default:
			// The end of the items: a top-level key (or anything else at the margin).
			if cur == nil || (len(l) > 0 && (l[0] == ' ' || l[0] == '-' || l[0] == '#')) {
				return nil, nil, nil, false
			}
			items = append(items, cur)
			return append(doc[:start+1:start+1], doc[pos:]...), items, lines, true
		}
		pos, line = end, line+1
	}
	if cur == nil {
		return nil, nil, nil, false
	}
	items = append(items, cur)
	return doc[:start+1], items, lines, true
}
