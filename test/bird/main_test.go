//go:build e2e

// Package bird checks rrguard's route-propagation prediction against real BGP speakers: for
// a topology given as Calico manifests, every node gets a network namespace of its own on a
// bridge (the bridge in a namespace of its own: the host's network is untouched), a BIRD 1.6
// (calico-bird's lineage) configured with the sessions `rrguard sessions -o bird` renders for
// it, and one pod block (/26, or /64 for IPv6) exported with a filter like Calico's. Once the
// sessions rrguard calls established are Established and the tables are stable, what each
// BIRD learned is compared node pair by node pair with `rrguard sessions -o json`.
//
// It needs Linux, root, iproute2 and Debian's bird package (.ci/run installs it). Elsewhere it
// fails with the reason, unless RRGUARD_SKIP_BIRD=1.
package bird

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rrguard/rrguard/test/harness"
)

var (
	rrguardBin string
	// live holds what the running tests started, so that an interrupt still cleans up.
	live = &registry{procs: map[int]*os.Process{}, netns: map[string]bool{}}
)

type registry struct {
	mu    sync.Mutex
	procs map[int]*os.Process
	netns map[string]bool
}

func (r *registry) addProc(p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs[p.Pid] = p
}

func (r *registry) dropProc(p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, p.Pid)
}

func (r *registry) addNetns(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.netns[name] = true
}

func (r *registry) dropNetns(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.netns, name)
}

// cleanAll stops every process and removes every namespace still registered.
func (r *registry) cleanAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, p := range r.procs {
		_ = p.Kill()
		_, _ = p.Wait()
		delete(r.procs, pid)
	}
	for ns := range r.netns {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		delete(r.netns, ns)
	}
}

func TestMain(m *testing.M) {
	if reason := unsupported(); reason != "" {
		if os.Getenv("RRGUARD_SKIP_BIRD") == "1" {
			fmt.Println("test/bird: skipped (RRGUARD_SKIP_BIRD=1):", reason)
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "test/bird:", reason, "(set RRGUARD_SKIP_BIRD=1 to skip these tests)")
		os.Exit(1)
	}
	// The cases wait on BIRD timers, not on the CPU: run 8 at a time unless -parallel says.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "8")
	}
	removeStaleNamespaces()
	dir, err := os.MkdirTemp("", "rrguard-bird-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, err := harness.FindRoot()
	if err == nil {
		rrguardBin, err = harness.Build(root, "./cmd/rrguard", dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/bird: build rrguard:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		live.cleanAll()
		os.RemoveAll(dir)
		os.Exit(130)
	}()
	code := m.Run()
	live.cleanAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

// unsupported says why this machine cannot run the tests ("" if it can).
func unsupported() string {
	if runtime.GOOS != "linux" {
		return "needs Linux network namespaces (this is " + runtime.GOOS + ")"
	}
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	for _, tool := range []string{"ip", "bird", "bird6", "birdc", "birdc6"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "needs " + tool + " (apt-get install bird iproute2)"
		}
	}
	return ""
}

// nsPrefix names this process's namespaces: rrgb<pid>-…, so that a later run can tell
// namespaces left by a process that died (kill -9) and remove them.
func nsPrefix() string { return fmt.Sprintf("rrgb%d-", os.Getpid()) }

func removeStaleNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "rrgb")
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			_ = exec.Command("ip", "netns", "delete", name).Run()
		}
	}
}
