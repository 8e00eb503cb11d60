package scratch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// deadPID is the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSweep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	tmp := os.TempDir()
	mine, err := Dir("harness-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(mine) != tmp || !filepath.IsAbs(mine) || filepath.Base(mine)[:len("rrguard-harness-")] != "rrguard-harness-" {
		t.Fatalf("Dir = %s, want %s/rrguard-harness-*", mine, tmp)
	}
	dir := func(name, owner string) string {
		d := filepath.Join(tmp, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	self, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir() // not in TMPDIR: never removed, even when adopted
	dead := dir("rrguard-bird-dead", fmt.Sprintf("pid %d start 1\nalso %s\nalso %s\n", deadPID(t), filepath.Join(tmp, "envtest-serving-certs-1"), elsewhere))
	adopted := dir("envtest-serving-certs-1", "")
	reused := dir("rrguard-plan-reused", fmt.Sprintf("pid %d start %d\n", os.Getpid(), self+1))
	live := dir("rrguard-harness-live", fmt.Sprintf("pid %d start %d\n", os.Getpid(), self))
	unowned := dir("rrguard-conformance-unowned", "")
	garbled := dir("rrguard-garbled", "pid x start y\n")
	other := dir("k8s_test_framework_1", fmt.Sprintf("pid %d start 1\n", deadPID(t)))

	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{adopted, dead, reused}
	if !slices.Equal(removed, want) {
		t.Errorf("Sweep removed %v, want %v", removed, want)
	}
	for _, d := range want {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", d, err)
		}
	}
	for _, d := range []string{mine, live, unowned, garbled, other, elsewhere} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s, which Sweep must keep, is gone: %v", d, err)
		}
	}
}

func TestAdopt(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	d, err := Dir("rrguard-harness-")
	if err != nil {
		t.Fatal(err)
	}
	if err := Adopt(d, "/tmp/envtest-serving-certs-2"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(d, ownerFile))
	if err != nil {
		t.Fatal(err)
	}
	pid, start, also, ok := parseOwner(raw)
	self, _ := StartTime(os.Getpid())
	if !ok || pid != os.Getpid() || start != self || !slices.Equal(also, []string{"/tmp/envtest-serving-certs-2"}) {
		t.Errorf("owner record %q: pid %d start %d also %v ok %v", raw, pid, start, also, ok)
	}
}
