//go:build e2e

// Package bird checks rrguard's route-propagation prediction against real Calico and real BGP
// speakers. A topology is written into the test API server as calico-node and calicoctl
// would find it (core Nodes with their projectcalico.org/* annotations, IPPools, IPAM block
// affinities, BGPFilters, BGPPeers, BGPConfigurations, Secrets), and Calico's own confd, built
// from the pinned module by `make controlplane`, renders each node's bird.cfg and bird6.cfg
// (with their includes) as calico-node does in Kubernetes-datastore mode. Every node gets a
// network namespace of its own on a bridge (the bridge in a namespace of its own: the host's
// network is untouched) and a BIRD 1.6 (calico-bird's lineage) running confd's output. Once
// the tables are stable, what each BIRD learned, and which sessions are Established, is
// compared node pair by node pair with `rrguard sessions -o json` run on the same objects
// written as manifests.
//
// It needs Linux, root, iproute2, Debian's bird package (.ci/run installs it) and the control
// plane of `make controlplane` (kube-apiserver, etcd and confd in bin/). Without BIRD or root
// it fails with the reason, unless RRGUARD_SKIP_BIRD=1; without the control plane it fails.
// RRGUARD_BIRD_SEED replays the random topologies of a run, RRGUARD_BIRD_RANDOM sets how many
// (32), RRGUARD_BIRD_RRGUARD compares with another rrguard binary than the working tree's.
package bird

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
	// confdBin is Calico's confd (bin/confd, or confd beside KUBEBUILDER_ASSETS' binaries).
	confdBin string
	// templatesDir holds confd's templates of the pinned module, krt_tunnel disabled (see
	// prepareTemplates); confdTOMLs its conf.d, rewritten per node by renderNode.
	templatesDir, confdTOMLs string
	// h is the control plane confd reads from.
	h *harness.Harness
	// live holds what the running tests started, so that an interrupt still cleans up.
	live = &registry{procs: map[int]*os.Process{}, netns: map[string]bool{}}
)

type registry struct {
	mu      sync.Mutex
	procs   map[int]*os.Process
	netns   map[string]bool
	harness *harness.Harness
	stopped bool
}

// startProc starts cmd and registers its process, under the registry's lock: a cleanup in
// progress (an interrupt) never misses a process, and none starts after it.
func (r *registry) startProc(cmd *exec.Cmd) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("stopping")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.procs[cmd.Process.Pid] = cmd.Process
	return nil
}

func (r *registry) dropProc(p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.procs, p.Pid)
}

// addNetns creates network namespace name and registers it, under the registry's lock.
func (r *registry) addNetns(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("stopping")
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	r.netns[name] = true
	return nil
}

// delNetns removes network namespace name.
func (r *registry) delNetns(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = exec.Command("ip", "netns", "delete", name).Run()
	delete(r.netns, name)
}

func (r *registry) setHarness(started *harness.Harness) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.harness = started
}

// cleanAll stops every process (BIRDs, confds), removes every namespace of this process (the
// registered ones, and any other named with nsPrefix), then stops the control plane; nothing
// starts after it. With exit set it exits the test binary with that status, still holding
// the lock, so that no test goroutine creates anything between the cleanup and the exit.
// It returns the control plane's stop error.
func (r *registry) cleanAll(exit int) error {
	r.mu.Lock()
	if exit == 0 {
		defer r.mu.Unlock()
	}
	r.stopped = true
	for pid, p := range r.procs {
		_ = p.Kill() // reaped by the goroutine that waits for it, or with us
		delete(r.procs, pid)
	}
	for ns := range r.netns {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		delete(r.netns, ns)
	}
	removeNamespaces(func(name string) bool { return strings.HasPrefix(name, nsPrefix()) })
	var err error
	if r.harness != nil {
		err = r.harness.Stop()
		r.harness = nil
	}
	if exit != 0 {
		os.Exit(exit)
	}
	return err
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
	// The cases wait on BIRD timers more than on the CPU, and the tests run side by side:
	// 32 cases at a time unless -parallel says (most wait for confd, see renderMu), their
	// BIRDs at most 10 topologies at a time (see parallel and big).
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", "32")
	}
	removeStaleNamespaces()
	dir, err := os.MkdirTemp("", "rrguard-bird-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := setUpAndRun(m, dir)
	os.RemoveAll(dir)
	os.Exit(code)
}

// setUpAndRun prepares confd's configuration and rrguard, starts the control plane and runs the
// tests; whatever happens, it stops what it started.
func setUpAndRun(m *testing.M, dir string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		os.RemoveAll(dir)
		_ = live.cleanAll(130)
	}()

	root, err := harness.FindRoot()
	if rrguardBin = os.Getenv("RRGUARD_BIRD_RRGUARD"); rrguardBin == "" && err == nil {
		rrguardBin, err = harness.Build(root, "./cmd/rrguard", dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/bird: build rrguard:", err)
		return 1
	}
	if err := prepareConfd(root, dir); err != nil {
		fmt.Fprintln(os.Stderr, "test/bird:", err)
		return 1
	}
	started, err := harness.Start(harness.Options{RootDir: root})
	if started != nil {
		live.setHarness(started)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		_ = live.cleanAll(0)
		return 1
	}
	h = started
	confdBin = filepath.Join(h.BinDir, "confd")
	if fi, err := os.Stat(confdBin); err != nil || fi.Mode()&0o111 == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %v: confd not in %s (built from the pinned Calico module by `make controlplane`)\n", harness.ErrMissingBinaries, h.BinDir)
		_ = live.cleanAll(0)
		return 1
	}
	code := m.Run()
	if err := live.cleanAll(0); err != nil {
		fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
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

// removeStaleNamespaces removes the namespaces of test/bird processes that are gone.
func removeStaleNamespaces() {
	removeNamespaces(func(name string) bool {
		rest, ok := strings.CutPrefix(name, "rrgb")
		if !ok {
			return false
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		return ok && err == nil && syscall.Kill(pid, 0) == syscall.ESRCH
	})
}

// removeNamespaces removes the network namespaces whose names match.
func removeNamespaces(match func(string) bool) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name != "" && match(name) {
			_ = exec.Command("ip", "netns", "delete", name).Run()
		}
	}
}
