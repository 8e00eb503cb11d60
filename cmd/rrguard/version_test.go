package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.3", "0123456789ab"
	code, out, errOut := runCLI(t, "", "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"rrguard v1.2.3\n", "commit:   0123456789ab\n", "models:   Calico " + calicoVersion + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("rrguard version prints no %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, "", "version", "-o", "json")
	var got buildInfo
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("rrguard version -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if got.Version != "v1.2.3" || got.Commit != "0123456789ab" || got.Calico != calicoVersion || got.Go == "" || got.Platform == "" {
		t.Errorf("rrguard version -o json: %+v", got)
	}
	if code, _, errOut := runCLI(t, "", "version", "-o", "yaml"); code != exitUsage || !strings.Contains(errOut, "text, json") {
		t.Errorf("rrguard version -o yaml: exit %d, %s; want 2 naming the formats", code, errOut)
	}
}

// TestVersionWithoutStampedCommit: a plain `go build` names no commit it cannot know.
func TestVersionWithoutStampedCommit(t *testing.T) {
	defer func(c string) { commit = c }(commit)
	commit = ""
	if got := currentBuild().Commit; got == "" {
		t.Error("no commit at all: want the VCS stamp or unknown")
	}
}

// TestCalicoVersionIsThePinnedModule: the Calico version rrguard says it models is the release
// of the github.com/projectcalico/calico module go.mod pins (its charts/calico/values.yaml
// names the release it was cut for).
func TestCalicoVersionIsThePinnedModule(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/projectcalico/calico")
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m github.com/projectcalico/calico: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(raw)), "charts", "calico", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "version: "); ok {
			if v != calicoVersion {
				t.Errorf("rrguard version says it models Calico %s; the pinned calico module is %s", calicoVersion, v)
			}
			return
		}
	}
	t.Fatalf("%s: no version line", f.Name())
}
