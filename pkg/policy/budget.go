package policy

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// DefaultMaxSteps is how many evaluation steps one policy may take on one input. A step is
// one expression OPA's evaluator evaluates (or one element a built-in such as numbers.range
// generates): a count, not a time, so a policy that runs out of steps does so on every
// machine, loaded or not. The shipped policies take a few dozen steps per object.
const DefaultMaxSteps = 1 << 20

// Why an evaluation stopped early.
type stop int

const (
	finished stop = iota
	outOfSteps
	outOfTime
)

// stepBudget is the cancellation OPA's evaluator asks before each expression (and built-ins
// between the elements they generate): it counts the questions and says stop once there were
// more than the budget allows, or once Cancel was called (the context is done). Counting
// costs nothing more than the question OPA asks anyway; a query tracer would.
type stepBudget struct {
	left    int  // asked only by the evaluating goroutine
	over    bool // the budget ran out
	stopped atomic.Bool
}

func (s *stepBudget) Cancel() { s.stopped.Store(true) }

func (s *stepBudget) Cancelled() bool {
	if s.stopped.Load() {
		return true
	}
	if s.left--; s.left < 0 {
		s.over = true
		return true
	}
	return false
}

// evalBounded evaluates q on input within maxSteps evaluation steps and until ctx is done, and
// says which of the two stopped it, if one did.
func evalBounded(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value, maxSteps int) (rego.ResultSet, stop, error) {
	budget := &stepBudget{left: maxSteps}
	unwatch := context.AfterFunc(ctx, budget.Cancel)
	defer unwatch()
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input), rego.EvalExternalCancel(budget))
	switch {
	case err == nil:
		return rs, finished, nil
	case budget.over && !budget.stopped.Load():
		return nil, outOfSteps, err
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || topdown.IsCancel(err):
		return nil, outOfTime, err
	}
	return nil, finished, err
}
