package cluster

import (
	"fmt"
	"reflect"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
)

// listDocs are Lists as kubectl writes them and odd ones: block scalars, blank lines,
// comments, flow items, nested sequences, keys after the items, anchors.
var listDocs = []string{
	"apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: a\n    labels:\n      x: \"1\"\n  status:\n    conditions:\n    - type: Ready\n      status: \"True\"\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: b\nkind: List\nmetadata:\n  resourceVersion: \"\"\n",
	"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: a}}\n- apiVersion: v1\n  kind: Node\n  metadata: {name: b}\n",
	"items:\n- a: |\n    line one\n\n      indented\n    last\n  b: >-\n    folded\n    text\n- c: 1\napiVersion: v1\nkind: List\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: 1\n  # a comment in the item\n  b: 2\n\n- c: 3\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: 1\n# a comment at the margin\n- b: 2\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: &x 1\n- b: *x\n",
	"apiVersion: v1\nkind: List\nitems:\n-   a: 1\n    b: 2\n",
	"apiVersion: v1\nkind: List\nitems:\n- - 1\n  - 2\n- x\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: \"multi\n    line\"\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: 1\nitems: []\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: 1\n  b: 2\n c: 3\n",
	"apiVersion: v1\nkind: List\nitems:\n-\n  a: 1\n",
	"apiVersion: v1\nkind: List\nitems:\n- a: 1\n  ? complex\n  : key\n",
}

// checkSplitList fails t when the loader splits doc (splitList, and isListHeader of the header
// left) and the header or an item parses other than the same part of doc parsed whole.
func checkSplitList(t *testing.T, doc []byte) bool {
	t.Helper()
	header, items, lines, ok := splitList(doc)
	if !ok || !isListHeader(header) {
		return false
	}
	if len(lines) != len(items) {
		t.Fatalf("%d items, %d lines", len(items), len(lines))
	}
	var whole interface{}
	if err := yaml2.Unmarshal(doc, &whole); err != nil {
		for _, item := range items {
			if yaml2.Unmarshal(item, new(interface{})) != nil {
				return true // refused either way
			}
		}
		if yaml2.Unmarshal(header, new(interface{})) != nil {
			return true
		}
		t.Fatalf("%q: refused whole (%v), but its split parses", doc, err)
	}
	m, isMap := whole.(map[interface{}]interface{})
	want, isList := m["items"].([]interface{})
	if !isMap || !isList {
		t.Fatalf("%q: split, but its items are not a sequence: %#v", doc, whole)
	}
	if len(want) != len(items) {
		t.Fatalf("%q: %d items split, %d parsed", doc, len(items), len(want))
	}
	for i, item := range items {
		var got interface{}
		if err := yaml2.Unmarshal(item, &got); err != nil {
			t.Fatalf("%q: item %d %q refused alone: %v", doc, i, item, err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("%q: item %d alone %#v, in the List %#v", doc, i, got, want[i])
		}
	}
	var h map[interface{}]interface{}
	if err := yaml2.Unmarshal(header, &h); err != nil {
		t.Fatalf("%q: header %q refused: %v", doc, header, err)
	}
	delete(m, "items")
	if fmt.Sprint(h) != fmt.Sprint(m) && !(len(h) == 0 && len(m) == 0) {
		t.Fatalf("%q: header %#v, the List without items %#v", doc, h, m)
	}
	return true
}

func TestSplitList(t *testing.T) {
	split := 0
	for _, doc := range listDocs {
		if checkSplitList(t, []byte(doc)) {
			split++
		}
	}
	if split < 3 {
		t.Errorf("%d of %d Lists split", split, len(listDocs))
	}
	// What kubectl writes is split: the point of it.
	if _, _, _, ok := splitList([]byte(listDocs[0])); !ok {
		t.Error("kubectl's List is not split")
	}
}

// FuzzSplitList: a List split into its items parses as the List parsed whole.
func FuzzSplitList(f *testing.F) {
	for _, doc := range listDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkSplitList(t, doc)
	})
}
