//go:build linux

package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The control plane dies with the test process. envtest starts etcd and kube-apiserver each in
// a process group of its own (so a Ctrl-C to the test's group does not reach them) and offers
// no way to set their SysProcAttr. So the harness points envtest at a link to the test binary
// itself (workDir/bin/etcd, workDir/bin/kube-apiserver) beside a file naming the real binary
// and the test process: started so, the test binary sets its parent-death signal to SIGKILL
// and execs the real one, which keeps it. The kernel then kills etcd and kube-apiserver when
// the thread that started them ends; Go ends no thread of a process that runs (unless a
// goroutine locked to it exits), so when the test process does, however it ends.
//
// The test process itself gets SIGTERM when its parent (`go test`) ends, and stops the
// control plane on SIGINT, SIGTERM and SIGHUP (see stopOnSignal).

// superviseSuffix names, beside a link, the file that makes the test binary exec the real
// binary under a parent-death signal: its path, then the PID of the test process, a line each.
const superviseSuffix = ".supervised"

func init() {
	spec, err := os.ReadFile(os.Args[0] + superviseSuffix)
	if err != nil {
		return // a test binary run as itself
	}
	os.Exit(execSupervised(string(spec)))
}

// execSupervised execs the binary spec names with the arguments of this process, dying with
// the test process: it returns only on an error, the exit status to report.
func execSupervised(spec string) int {
	f := strings.Split(strings.TrimSuffix(spec, "\n"), "\n")
	if len(f) != 2 {
		fmt.Fprintf(os.Stderr, "harness: %s%s: want a path and a PID on two lines, got %q\n", os.Args[0], superviseSuffix, spec)
		return 127
	}
	parent, err := strconv.Atoi(f[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %s%s: %v\n", os.Args[0], superviseSuffix, err)
		return 127
	}
	// init runs on the main thread, which execve keeps: the signal survives the exec.
	if err := setParentDeathSignal(syscall.SIGKILL); err != nil {
		fmt.Fprintf(os.Stderr, "harness: set the parent-death signal: %v\n", err)
		return 127
	}
	if os.Getppid() != parent {
		return 1 // the test process ended before the signal was set
	}
	err = syscall.Exec(f[0], append([]string{f[0]}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "harness: exec %s: %v\n", f[0], err)
	return 127
}

// setParentDeathSignal asks the kernel to send sig to this process when its parent ends.
func setParentDeathSignal(sig syscall.Signal) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0); errno != 0 {
		return errno
	}
	return nil
}

// supervised returns the path of a link to the test binary in dir, named as binary, that runs
// binary so that it dies with the test process.
func supervised(dir, binary string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	link := filepath.Join(dir, filepath.Base(binary))
	if err := os.Symlink(self, link); err != nil {
		return "", err
	}
	return link, os.WriteFile(link+superviseSuffix, fmt.Appendf(nil, "%s\n%d\n", binary, os.Getpid()), 0o600)
}

// endWithParent makes the test process receive SIGTERM when its parent (`go test`, or a
// shell) ends, so that stopOnSignal stops the control plane: a test binary whose `go test`
// was killed would otherwise run on alone.
func endWithParent() error { return setParentDeathSignal(syscall.SIGTERM) }
