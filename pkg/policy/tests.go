package policy

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestSummary counts the outcomes of a test run.
type TestSummary struct {
	Passed, Failed, Errors, Skipped int
}

// OK reports whether tests ran and none failed.
func (s TestSummary) OK() bool { return s.Failed == 0 && s.Errors == 0 && s.Passed+s.Skipped > 0 }

// RunTests runs the Rego unit tests (test_* rules in *_test.rego files) of the policies in
// dirs as `opa test` does, under rrguard's rules: the same refused built-ins, rrguard.lib
// loaded, the directories' params in data.rrguard.params. With no dirs it tests the policies
// shipped with rrguard. OPA's report goes to w. The error is for policies that do not load.
func RunTests(ctx context.Context, dirs []string, w io.Writer, verbose bool) (TestSummary, error) {
	opts := Options{Dirs: dirs, NoShipped: len(dirs) > 0, Tests: true}
	src, err := read(opts)
	if err != nil {
		return TestSummary{}, err
	}
	// Compile once the way enforcement does, for its errors (file:line, refused built-ins).
	if _, err := compile(src, opts); err != nil {
		return TestSummary{}, err
	}
	modules, problems := parse(src.rego, nil) // fresh: the tester compiles them its own way
	if len(problems) > 0 {
		return TestSummary{}, &LoadError{Problems: problems}
	}
	c := ast.NewCompiler().WithCapabilities(capabilities()).WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)
	store := inmem.NewFromObjectWithOpts(map[string]any{"rrguard": map[string]any{"params": src.params}}, inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return TestSummary{}, err
	}
	defer store.Abort(ctx, txn)
	runner := tester.NewRunner().SetCompiler(c).SetStore(store).SetModules(modules).
		SetDefaultRegoVersion(ast.RegoV1).CapturePrintOutput(true).RaiseBuiltinErrors(true).SetTimeout(time.Minute)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return TestSummary{}, &LoadError{Problems: astProblems(err, "")}
	}
	var sum TestSummary
	counted := make(chan *tester.Result)
	go func() {
		defer close(counted)
		for r := range ch {
			switch {
			case r.Skip:
				sum.Skipped++
			case r.Error != nil:
				sum.Errors++
			case r.Fail:
				sum.Failed++
			default:
				sum.Passed++
			}
			counted <- r
		}
	}()
	if err := (tester.PrettyReporter{Output: w, Verbose: verbose, FailureLine: true}).Report(counted); err != nil {
		return sum, fmt.Errorf("report: %w", err)
	}
	return sum, nil
}
