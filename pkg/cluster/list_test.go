package cluster

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
)

var source = regexp.MustCompile(`in\.yaml#[0-9]+(\[[0-9]+\])?`)

// TestListReadsAsItsItems: a List (as `kubectl get -o yaml` writes it) of core/v1 Nodes, odd
// ones included, a BGPPeer, a projectcalico.org/v3 Node and a kind rrguard does not check
// reads as the same objects and notes as its items written as documents of their own; and a
// List with an item refused alone is refused.
func TestListReadsAsItsItems(t *testing.T) {
	others := []string{
		"apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {nodeSelector: \"!has(route-reflector)\", peerSelector: has(route-reflector)}\n",
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: v3node, labels: {route-reflector: true}}\nspec: {bgp: {ipv4Address: 10.9.9.9/24, routeReflectorClusterID: 1.0.0.1}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
	}
	list := func(items []interface{}) string {
		t.Helper()
		raw, err := yaml2.Marshal(map[string]interface{}{"apiVersion": "v1", "kind": "List", "items": items})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	read := func(input string) (string, []string, error) {
		t.Helper()
		var m Manifests
		err := m.LoadReader("in.yaml", strings.NewReader(input))
		raw, jerr := json.Marshal(m.Objects)
		if jerr != nil {
			t.Fatal(jerr)
		}
		var notes []string
		for _, n := range m.Notes {
			// Sources differ: in.yaml#1[3] in the List, in.yaml#4 for the documents.
			notes = append(notes, source.ReplaceAllString(n, "in.yaml"))
		}
		return string(raw), notes, err
	}
	var items []interface{}
	var docs []string
	refused := 0
	for _, doc := range append(append([]string{}, nodeDocs...), others...) {
		var y interface{}
		if err := yaml2.Unmarshal([]byte(doc), &y); err != nil || !jsonable(y) {
			continue
		}
		if _, ok := y.(map[interface{}]interface{}); !ok {
			continue
		}
		raw, err := yaml2.Marshal(y)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := read(string(raw)); err != nil {
			refused++
			if _, _, lerr := read(list([]interface{}{y})); lerr == nil {
				t.Errorf("refused alone (%v), read in a List:\n%s", err, raw)
			}
			continue
		}
		items = append(items, y)
		docs = append(docs, string(raw))
	}
	if len(items) < 20 || refused == 0 {
		t.Fatalf("%d items read, %d refused: want both", len(items), refused)
	}
	fromList, listNotes, err := read(list(items))
	if err != nil {
		t.Fatal(err)
	}
	fromDocs, docNotes, err := read(strings.Join(docs, "---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if fromList != fromDocs {
		t.Errorf("the List reads other objects than its items:\nList  %s\nitems %s", fromList, fromDocs)
	}
	if strings.Join(listNotes, "\n") != strings.Join(docNotes, "\n") {
		t.Errorf("notes differ:\nList  %q\nitems %q", listNotes, docNotes)
	}
}
