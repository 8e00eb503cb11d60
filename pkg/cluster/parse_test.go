package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// parseInputs are streams of documents, plain and odd, for the parser's tests and seeds.
var parseInputs = []string{
	strings.Join(nodeDocs, "---\n"),
	"a: 1\n---\nb: [1, 2\n---\nc: 3\n---\nd: 4\n", // an error mid-stream: the rest alone
	"a: 1\n...\n---\nb: 2\n", "%YAML 1.1\n---\na: 1\n", "\xef\xbb\xbfa: 1\n---\nb: 2\n",
	"a: 1\n---\n\xff\xfea\x00:\x00 \x001\x00\n", "a: \"x\n---\ny\"\n", "a: |+\n  x\n\n\n---\nb: |-\n  y\n",
	"a: &x 1\n---\nb: *x\n", "--- !!str\na\n---\nb\n", "a: 1\r\n---\r\nb: 2\r\n", "~\n---\n\n---\n# c\n",
	"a: 1\n---\nb: 2", "? a\n: 1\n---\n- x\n- y\n", "a:\n  b:\n    c: d\ne: f\n",
}

// documentsOf splits raw into documents: as the loader splits them when it can, else at
// every line that starts with "---".
func documentsOf(raw []byte) [][]byte {
	var docs [][]byte
	if splitDocuments(raw, func(d []byte) bool { docs = append(docs, d); return true }) {
		return docs
	}
	return bytes.Split(raw, []byte("\n---"))
}

// checkParse fails t when docParser parses docs (but those skip names) other than
// yaml2.Unmarshal parses each alone; it returns how many documents went through the stream.
func checkParse(t *testing.T, docs [][]byte, skip func(int) bool) int {
	t.Helper()
	var p docParser
	out := make([]parsed, len(docs))
	p.parse(docs, skip, out)
	streamed := 0
	for i, doc := range docs {
		if skip(i) {
			if out[i] != (parsed{}) {
				t.Fatalf("document %d was to be skipped, parsed as %#v", i, out[i])
			}
			continue
		}
		if _, ok := streamable(doc); ok && len(doc) <= streamMax {
			streamed++
		}
		want := parseAlone(doc)
		if out[i].ok != want.ok || fmt.Sprintf("%#v", out[i].y) != fmt.Sprintf("%#v", want.y) {
			t.Fatalf("document %d of %q:\nparsed %#v (%v)\nalone  %#v (%v)", i, docs, out[i].y, out[i].ok, want.y, want.ok)
		}
	}
	return streamed
}

func TestParseDocuments(t *testing.T) {
	never := func(int) bool { return false }
	for _, in := range parseInputs {
		checkParse(t, documentsOf([]byte(in)), never)
		checkParse(t, documentsOf([]byte(in)), func(i int) bool { return i%2 == 1 })
	}

	// What the loader meets most, Node manifests as kubectl writes them, goes through the
	// stream: the point of it.
	raw, err := os.ReadFile(filepath.Join(validatetest.NodeManifests(t, 200), "nodes-000.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := documentsOf(raw)
	if n := checkParse(t, docs, never); n != len(docs) || n != 200 {
		t.Errorf("%d of %d Node documents go through the stream", n, len(docs))
	}
	// One document the stream refuses leaves the others parsed right, before and after it.
	docs[100] = []byte("metadata: {name: [\n")
	checkParse(t, docs, never)

	for _, doc := range []string{"a: 1", "\xef\xbb\xbfa: 1\n", "a: 1\r\n", "---\n---\na: 1\n", "a: 1\n...\n", "%TAG ! x\n", "a: 1\n---\n", "a: |\n  x\n...\n", "----\n"} {
		if _, ok := streamable([]byte(doc)); ok {
			t.Errorf("%q is taken as streamable", doc)
		}
	}
	for doc, explicit := range map[string]bool{"a: 1\n": false, " ---\n": false, "a: '...'\n": false, "# %x\n": false, "--- # c\na: 1\n": true, "---\n": true, "--- a\n": true} {
		if e, ok := streamable([]byte(doc)); !ok || e != explicit {
			t.Errorf("%q: streamable %v, explicit %v", doc, ok, e)
		}
	}
}

// FuzzParseDocuments: the documents of any input parse through the loader's parser exactly
// as each parses alone, whichever of the first eight are skipped.
func FuzzParseDocuments(f *testing.F) {
	for _, in := range parseInputs {
		f.Add([]byte(in), uint8(0))
		f.Add([]byte(in), uint8(0b10100101))
	}
	for _, in := range splitInputs {
		f.Add([]byte(in), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, skip uint8) {
		checkParse(t, documentsOf(raw), func(i int) bool { return i < 8 && skip&(1<<i) != 0 })
	})
}
