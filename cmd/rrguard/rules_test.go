package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate"
)

// TestRuleTables: the README's and docs/rules.md's rule tables are the catalogue's. With
// RRGUARD_UPDATE_DOCS=1 the test rewrites them instead.
func TestRuleTables(t *testing.T) {
	entries := catalogue(nil)
	for _, doc := range []struct {
		path  string
		short bool
	}{{"README.md", true}, {"docs/rules.md", false}} {
		path := filepath.Join("..", "..", doc.path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		begin := strings.Index(text, "<!-- rules:begin")
		end := strings.Index(text, "<!-- rules:end -->")
		if begin < 0 || end < begin {
			t.Fatalf("%s: no <!-- rules:begin --> … <!-- rules:end --> block", doc.path)
		}
		start := begin + strings.Index(text[begin:], "\n") + 1
		want := rulesMarkdown(entries, doc.short)
		if text[start:end] == want {
			continue
		}
		if os.Getenv("RRGUARD_UPDATE_DOCS") == "1" {
			if err := os.WriteFile(path, []byte(text[:start]+want+text[end:]), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: the rule table differs from the catalogue (pkg/validate/rules_*.go); run RRGUARD_UPDATE_DOCS=1 go test ./cmd/rrguard -run TestRuleTables\n--- in the file:\n%s\n--- from the catalogue:\n%s", doc.path, text[start:end], want)
	}
}

func TestRulesOutputs(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "-o", "json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Rules []catalogueEntry `json:"rules"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	builtin := map[string]catalogueEntry{}
	for _, e := range got.Rules {
		if e.Source == "builtin" {
			builtin[e.ID] = e
		}
	}
	for _, id := range validate.RuleIDs() {
		e, ok := builtin[id]
		if !ok {
			t.Errorf("rules -o json lacks %s", id)
			continue
		}
		if e.Default == "" || e.Summary == "" || e.Doc == "" || e.Example == "" {
			t.Errorf("%s: the catalogue entry is incomplete: %+v", id, e)
		}
	}
	if len(builtin) != len(validate.Rules) {
		t.Errorf("%d built-in rules listed, the catalogue has %d", len(builtin), len(validate.Rules))
	}
	out.Reset()
	if code := run([]string{"rules", "-o", "markdown"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "| `route-propagation` | deny |") {
		t.Errorf("rules -o markdown: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"rules", "-o", "yaml"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("rules -o yaml: exit %d, want %d", code, exitUsage)
	}
}
