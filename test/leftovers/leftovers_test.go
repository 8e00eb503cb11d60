//go:build e2e

// Package leftovers proves that the live tests' control plane leaves nothing behind, however
// its test run ends: it runs `go test` on this very package in hold mode (the test binary
// starts the harness, says where it is, and waits), ends it the three ways a developer or CI
// does — Ctrl-C (SIGINT to its process group), kill -9 of `go test`, kill -9 of the test
// binary — and finds no etcd or kube-apiserver of that run still running, and none of its
// directories left once the next run has started.
package leftovers

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
)

// holdEnv, set to a file's path, makes the test binary hold a control plane instead of running
// the tests: it starts the harness, writes its state into the file, and waits to be ended.
const holdEnv = "RRGUARD_LEFTOVERS_HOLD"

func TestMain(m *testing.M) {
	if state := os.Getenv(holdEnv); state != "" {
		os.Exit(hold(state))
	}
	os.Exit(m.Run())
}

// holdLimit ends a holding run that nobody ends: the harness never outlives it.
const holdLimit = 5 * time.Minute

func hold(state string) int {
	h, err := harness.Start(harness.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer h.Stop()
	s := fmt.Sprintf("pid %d\nwork %s\ncerts %s\n", os.Getpid(), h.WorkDir(), h.Env.WebhookInstallOptions.LocalServingCertDir)
	if err := os.WriteFile(state+".tmp", []byte(s), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	if err := os.Rename(state+".tmp", state); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	time.Sleep(holdLimit)
	fmt.Fprintf(os.Stderr, "FAIL: held the control plane for %v and nobody ended the run\n", holdLimit)
	return 1
}

// run is one `go test` holding a control plane.
type run struct {
	cmd    *exec.Cmd
	output *harness.LogBuffer
	exited chan struct{}
	// From the holding test binary: its PID, the harness's directory and envtest's serving
	// certificates' directory.
	binary      int
	work, certs string
}

// holdControlPlane runs `go test` on this package in hold mode, in a process group of its own
// as a shell runs it, and waits until the harness has started.
func holdControlPlane(t *testing.T) *run {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	r := &run{output: &harness.LogBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command("go", "test", "-tags", "e2e", "-count=1", "-run", "^$", ".")
	// Go's own build directories go where the test removes them.
	r.cmd.Env = append(os.Environ(), holdEnv+"="+state, "GOTMPDIR="+t.TempDir())
	r.cmd.Stdout, r.cmd.Stderr = r.output, r.output
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) // ours, if a check failed first
		<-r.exited
	})
	deadline := time.Now().Add(5 * time.Minute)
	for {
		raw, err := os.ReadFile(state)
		if err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				k, v, _ := strings.Cut(line, " ")
				switch k {
				case "pid":
					r.binary, _ = strconv.Atoi(v)
				case "work":
					r.work = v
				case "certs":
					r.certs = v
				}
			}
			break
		}
		select {
		case <-r.exited:
			t.Fatalf("go test ended before the harness started:\n%s", r.output.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the harness did not start within 5 minutes:\n%s", r.output.String())
		}
	}
	if r.binary == 0 || r.work == "" || r.certs == "" {
		t.Fatalf("a holding run reported %d, %q, %q", r.binary, r.work, r.certs)
	}
	return r
}

// processesOf lists the processes whose command line names dir (etcd's --data-dir and
// kube-apiserver's --cert-dir are in the harness's directory), as "PID name".
func processesOf(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		name, _, _ := bytes.Cut(cmdline, []byte{0})
		out = append(out, fmt.Sprintf("%d %s", pid, filepath.Base(string(name))))
	}
	return out
}

// exists reports whether process pid is still there (a zombie counts as gone: it runs
// nothing and holds nothing).
func exists(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(raw, ')')
	return i < 0 || !bytes.HasPrefix(raw[i+1:], []byte(" Z"))
}

func present(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// waitGone waits up to a minute until nothing of run r runs: no etcd or kube-apiserver of it,
// no test binary, no `go test`.
func waitGone(t *testing.T, r *run) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		procs := processesOf(t, r.work)
		left := len(procs) > 0 || exists(r.binary)
		select {
		case <-r.exited:
		default:
			left = true
		}
		if !left {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the run was ended: its processes %v, test binary %d running %v; go test's output:\n%s", procs, r.binary, exists(r.binary), r.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNothingLeftBehind ends three holding runs in three ways. Each time the run's etcd and
// kube-apiserver are gone within a minute. A run whose test binary was killed with SIGKILL
// ran no cleanup: its directories are removed when the next run's harness starts; the others
// removed theirs themselves.
func TestNothingLeftBehind(t *testing.T) {
	ends := []struct {
		name     string
		end      func(r *run) error
		cleansUp bool // the run removes its directories itself
	}{
		{"kill -9 of the test binary", func(r *run) error { return syscall.Kill(r.binary, syscall.SIGKILL) }, false},
		{"Ctrl-C: SIGINT to go test's process group", func(r *run) error { return syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT) }, true},
		{"kill -9 of go test", func(r *run) error { return syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL) }, true},
	}
	var unswept []string // directories of a killed run, until the next run starts
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			start := time.Now()
			r := holdControlPlane(t)
			for _, d := range unswept {
				if present(d) {
					t.Errorf("%s, of a run killed before, is still there after the next run started", d)
				}
			}
			unswept = nil
			procs := processesOf(t, r.work)
			names := strings.Join(procs, ", ")
			if !strings.Contains(names, " etcd") || !strings.Contains(names, " kube-apiserver") {
				t.Fatalf("the run's control plane is not running as etcd and kube-apiserver: %v", procs)
			}
			if !present(r.work) || !present(r.certs) {
				t.Fatalf("the run's directories %s, %s are not there", r.work, r.certs)
			}
			held := time.Since(start)
			if err := e.end(r); err != nil {
				t.Fatal(err)
			}
			ended := time.Now()
			waitGone(t, r)
			t.Logf("control plane up after %v (%s); %s: everything gone after %v", held.Round(time.Millisecond), names, e.name, time.Since(ended).Round(time.Millisecond))
			for _, d := range []string{r.work, r.certs} {
				switch {
				case !present(d):
				case e.cleansUp:
					t.Errorf("%s is left behind", d)
				default:
					unswept = append(unswept, d)
				}
			}
			if len(unswept) == 0 && !e.cleansUp {
				t.Errorf("a run killed with SIGKILL removed its directories: the check of the next start's sweep checks nothing")
			}
		})
	}
	if len(unswept) > 0 {
		t.Errorf("the last run must leave nothing to sweep: %v", unswept)
	}
}
