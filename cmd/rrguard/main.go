// Command rrguard checks Calico route-reflector configuration offline: `validate` audits
// manifest files, `review` answers an AdmissionReview exactly as the webhook would.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
	exitInternal = 3
)

// version is stamped by the build (-ldflags "-X main.version=...").
var version = "dev"

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	os.Exit(run(commandLine(invokedAs, os.Args[1:]), os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A bug in rrguard is reported as one line, not as a stack trace in the user's CI log.
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "rrguard: internal error (a bug in rrguard %s; please report it with the input): %v\n", version, p)
			code = exitInternal
		}
	}()
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "rrguard:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "rrguard:", err)
	return exitUsage
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "rrguard",
		Short: "Guard Calico BGP route-reflector configuration",
		Long: `rrguard checks Calico route-reflector configuration: cluster IDs, AS numbers, BGPPeer
selectors, the node-to-node mesh switch, and whether every node still learns every other
node's pod routes. The same engine runs as an admission webhook in the cluster.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(newValidate(), newDiff(), newReview(), newRules(), newAudit(), newPolicy(), newSessions(), newGraph(), newPlan(), newController(), newVersion())
	kubectlConventions(root, invokedAs)
	return root
}

// checkOutput refuses an -o value that is not one of formats (exit 2).
func checkOutput(output string, formats []string) error {
	if !slices.Contains(formats, output) {
		return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: use one of %s", output, strings.Join(formats, ", "))}
	}
	return nil
}
