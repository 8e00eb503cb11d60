// Package docs checks the repository's Markdown pages: every relative link (to a file, a
// directory, or a heading of a page) resolves, so that moving text between the README and
// docs/ cannot leave a reader at a dead end.
package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const root = "../.."

// link finds Markdown links and images: [text](target) and ![alt](target "title").
var link = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// pages are the Markdown files the repository tracks.
func pages(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "*.md").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Fields(string(out)) {
		if !strings.Contains(f, "testdata/") {
			files = append(files, f)
		}
	}
	// Pages not yet committed count too.
	for _, dir := range []string{".", "docs"} {
		matches, _ := filepath.Glob(filepath.Join(root, dir, "*.md"))
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			if !slices.Contains(files, rel) {
				files = append(files, rel)
			}
		}
	}
	return files
}

// prose returns a page's lines outside fenced code blocks (as blank lines), with inline code
// emptied unless keepCode.
func prose(text string, keepCode bool) []string {
	var out []string
	fenced := false
	code := regexp.MustCompile("`[^`]*`")
	for _, line := range strings.Split(text, "\n") {
		if t := strings.TrimLeft(line, " "); strings.HasPrefix(t, "```") && len(line)-len(t) <= 3 {
			fenced = !fenced
			out = append(out, "")
			continue
		}
		if fenced {
			out = append(out, "")
			continue
		}
		if !keepCode {
			line = code.ReplaceAllString(line, "``")
		}
		out = append(out, line)
	}
	return out
}

// anchors returns the anchors GitHub gives a page's headings: lower case, punctuation but
// hyphens dropped, spaces as hyphens, "-1", "-2" for repeats.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	for _, line := range prose(text, true) {
		t := strings.TrimLeft(line, "#")
		if len(t) == len(line) || !strings.HasPrefix(t, " ") {
			continue
		}
		slug := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(strings.ReplaceAll(t, "`", ""))), ""), " ", "-")
		a := slug
		for n := 1; out[a]; n++ {
			a = slug + "-" + strconv.Itoa(n)
		}
		out[a] = true
	}
	return out
}

// TestDocLinks: every relative link of every page resolves: the file or directory exists, and
// a #fragment names a heading of the page it points to.
func TestDocLinks(t *testing.T) {
	checked := 0
	for _, page := range pages(t) {
		raw, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range prose(string(raw), false) {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				where := page + ":" + strconv.Itoa(i+1)
				path, fragment, _ := strings.Cut(target, "#")
				file := filepath.Join(root, filepath.Dir(page), path)
				if path == "" {
					file = filepath.Join(root, page)
				}
				info, err := os.Stat(file)
				if err != nil {
					t.Errorf("%s: link %s: no such file or directory", where, target)
					continue
				}
				if fragment == "" {
					continue
				}
				if info.IsDir() || !strings.HasSuffix(file, ".md") {
					t.Errorf("%s: link %s: a #fragment of what is not a Markdown page", where, target)
					continue
				}
				text, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(text))[fragment] {
					t.Errorf("%s: link %s: %s has no heading #%s", where, target, path, fragment)
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d relative links checked: is the link pattern still right?", checked)
	}
}

// TestAnchors: headings get GitHub's anchors.
func TestAnchors(t *testing.T) {
	a := anchors("# rrguard\n### The model, and how it is checked\n## Why failurePolicy differs per resource\n## `kubectl rrguard`: the CLI\n## Setting up\n## Setting up\n```\n# not a heading\n```\n")
	for _, want := range []string{"rrguard", "the-model-and-how-it-is-checked", "why-failurepolicy-differs-per-resource", "kubectl-rrguard-the-cli", "setting-up", "setting-up-1"} {
		if !a[want] {
			t.Errorf("no anchor %s in %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a comment in a code block made an anchor")
	}
}
