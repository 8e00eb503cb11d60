package policy

import (
	"context"
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// DefaultMaxSteps is how many evaluation steps one policy may take on one input. A step is one
// event of OPA's evaluator (an expression evaluated, a rule entered, a value unified): a count,
// not a time, so a policy that runs out of steps does so on every machine, loaded or not. The
// shipped policies take a few hundred steps per object.
const DefaultMaxSteps = 1 << 20

// Why an evaluation stopped early.
type stop int

const (
	finished stop = iota
	outOfSteps
	outOfTime
)

// itemMarker is the file name of the location of the batch query's first expression per
// input: when the evaluator reaches it, the next input starts and the count starts again.
const itemMarker = "<rrguard batch input>"

// stepBudget is a query tracer that counts evaluation steps and cancels the query once one
// input has taken more than max. OPA checks the cancellation before each expression. In a
// batch the count starts again at each input (itemMarker), so a batch stops exactly when
// one of its inputs would have run out of steps on its own.
type stepBudget struct {
	max, used int
	over      bool
	cancel    topdown.Cancel
}

func (s *stepBudget) Enabled() bool               { return true }
func (s *stepBudget) Config() topdown.TraceConfig { return topdown.TraceConfig{} }
func (s *stepBudget) TraceEvent(e topdown.Event) {
	if e.Op == topdown.EvalOp && e.Location != nil && e.Location.File == itemMarker {
		s.used = 0
	}
	s.used++
	if s.used > s.max && !s.over && !s.cancel.Cancelled() {
		s.over = true
		s.cancel.Cancel()
	}
}

// evalBounded evaluates q on input within maxSteps evaluation steps (per input of a batch)
// and until ctx is done, and says which of the two stopped it, if one did.
func evalBounded(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value, maxSteps int) (rego.ResultSet, stop, error) {
	budget := &stepBudget{max: maxSteps, cancel: topdown.NewCancel()}
	unwatch := context.AfterFunc(ctx, budget.cancel.Cancel)
	defer unwatch()
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input), rego.EvalQueryTracer(budget), rego.EvalExternalCancel(budget.cancel))
	switch {
	case err == nil:
		return rs, finished, nil
	case budget.over:
		return nil, outOfSteps, err
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || topdown.IsCancel(err):
		return nil, outOfTime, err
	}
	return nil, finished, err
}
