package scenario

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDirs(t *testing.T) {
	for name, c := range map[string]struct {
		env  string
		want []string
	}{
		"unset":               {"", []string{"/r/test/scenarios"}},
		"one":                 {"/acc", []string{"/r/test/scenarios", "/acc"}},
		"two, empty elements": {":/a::/b:", []string{"/r/test/scenarios", "/a", "/b"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvDirs, c.env)
			if got := Dirs("/r"); !slices.Equal(got, c.want) {
				t.Errorf("Dirs = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLoadDirs(t *testing.T) {
	own := filepath.Join("..", "..", "test", "scenarios")
	extra := t.TempDir()
	story := "name: extra\nsteps:\n  - name: s\n    object: {apiVersion: v1, kind: Node, metadata: {name: a}}\n    expect: allow\n"
	if err := os.WriteFile(filepath.Join(extra, "extra.yaml"), []byte(story), 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := LoadDirs([]string{own, extra})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if !slices.Contains(names, "seed-tutorial") || names[len(names)-1] != "extra" {
		t.Errorf("scenarios %q: want rrguard's own (seed-tutorial among them), then extra", names)
	}

	for name, c := range map[string]struct {
		dir, want string
	}{
		"missing": {filepath.Join(extra, "nosuch"), "no such file"},
		"empty":   {t.TempDir(), "no *.yaml scenario"},
	} {
		if _, err := LoadDirs([]string{own, c.dir}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s directory: %v, want an error with %q", name, err, c.want)
		}
	}
}
