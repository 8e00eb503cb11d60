// Package scratch gives test beds temporary directories that outlive no run: each records the
// process that owns it, and Sweep removes those whose owner is gone (a test binary killed with
// SIGKILL runs no cleanup). The harness sweeps at every start; any test bed can create its
// directories here and sweep too, without linking the control plane.
package scratch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Prefix starts the name of every scratch directory (Dir adds it when the prefix lacks it).
const Prefix = "rrguard-"

// ownerFile, in a scratch directory, names its owner: "pid PID start TICKS" (the process's
// start time in clock ticks since boot, so that a PID reused by another process is not taken
// for the owner), then "also PATH" for each directory outside it that the owner made.
const ownerFile = ".rrguard-owner"

// Dir creates a directory in os.TempDir() named prefix followed by random characters, owned
// by the calling process.
func Dir(prefix string) (string, error) {
	if !strings.HasPrefix(prefix, Prefix) {
		prefix = Prefix + prefix
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	start, err := StartTime(os.Getpid())
	if err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "pid %d start %d\n", os.Getpid(), start), 0o600); err != nil {
		return "", errors.Join(err, os.RemoveAll(dir))
	}
	return dir, nil
}

// Adopt records in dir (made by Dir) that path, outside it, belongs to the same run, so that
// Sweep removes it with dir: a directory a library makes for itself (envtest's serving
// certificates).
func Adopt(dir, path string) error {
	f, err := os.OpenFile(filepath.Join(dir, ownerFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "also %s\n", path)
	return errors.Join(err, f.Close())
}

// Sweep removes the scratch directories in os.TempDir() whose owner has exited, with what
// they adopted, and returns them. Directories without an owner record (being created, or
// not made by Dir) are left alone.
func Sweep() ([]string, error) {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, start, also, ok := parseOwner(raw)
		if !ok || alive(pid, start) {
			continue
		}
		for _, p := range also {
			// Only what a library makes in the temporary directory, never a path elsewhere.
			if filepath.Dir(p) == filepath.Clean(tmp) {
				errs = append(errs, os.RemoveAll(p))
				removed = append(removed, p)
			}
		}
		errs = append(errs, os.RemoveAll(dir))
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

func parseOwner(raw []byte) (pid int, start uint64, also []string, ok bool) {
	s := bufio.NewScanner(bytes.NewReader(raw))
	for s.Scan() {
		if path, found := strings.CutPrefix(s.Text(), "also "); found {
			also = append(also, path)
			continue
		}
		if f := strings.Fields(s.Text()); len(f) == 4 && f[0] == "pid" && f[2] == "start" {
			p, err1 := strconv.Atoi(f[1])
			t, err2 := strconv.ParseUint(f[3], 10, 64)
			pid, start, ok = p, t, err1 == nil && err2 == nil && p > 0
		}
	}
	return pid, start, also, ok
}

// alive reports whether process pid runs and started at start.
func alive(pid int, start uint64) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	t, err := StartTime(pid)
	return err != nil || t == start // unknown: taken as alive
}

// StartTime is when process pid started, in clock ticks since boot (field 22 of
// /proc/PID/stat): with the PID, it names one process even once the PID is reused. 0 where
// there is no /proc.
func StartTime(pid int) (uint64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat("/proc/self/stat"); statErr != nil {
			return 0, nil // no /proc: the PID alone says who owns a directory
		}
	}
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}
