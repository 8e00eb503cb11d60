package validatetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CopyWith copies the manifest files of dir (the seed, say) into a temporary directory,
// replacing in the file named by each key of edits the text edits[key][0] with edits[key][1]:
// a user's mistake, made on a copy. A file that does not hold the text fails the test.
func CopyWith(t testing.TB, dir string, edits map[string][2]string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		if ed, ok := edits[e.Name()]; ok {
			if !strings.Contains(s, ed[0]) {
				t.Fatalf("%s does not contain %q", e.Name(), ed[0])
			}
			s = strings.ReplaceAll(s, ed[0], ed[1])
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
