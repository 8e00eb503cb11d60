package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// BatchSize is how many inputs EvalAll gives one policy in one query.
const BatchSize = 512

// batchQueries are the bound policies' batch queries, prepared on first use (an engine that
// only answers admission requests never needs them).
type batchQueries struct {
	once sync.Once
	qs   []rego.PreparedEvalQuery
	errs []error
	// none[j][kind] is true when policy j's rule index rules out every deny and warn rule
	// for an AUDIT input of that kind: its result is the empty set whatever the object,
	// without a rule body evaluated, so such inputs are not given to it.
	none []map[string]bool
}

// AuditKinds are the kinds of the objects an audit gives policies.
var AuditKinds = []string{"Node", "BGPPeer", "BGPConfiguration"}

// EvalAll evaluates every enabled policy on each of ins, with the results Eval would give
// input by input: out[i] is Eval(ctx, ins[i]).
//
// Each input is converted once and shared by all policies, and a policy is given up to
// BatchSize inputs in one query (`with input as item` per input), under the set's timeout
// for the whole batch. A batch that fails or runs out of time is evaluated again input by
// input, each under its own timeout as in Eval, so that errors and deadlines are reported on
// the input they concern; after a batch runs out of time the rest of that policy's inputs are
// evaluated one by one. A batch that finishes in time finished every one of its inputs in
// time, so the results are the same as Eval's. An AUDIT input of a kind for which the
// policy's rule index selects no deny or warn rule (`input.kind == "BGPPeer"` for a Node) is
// not evaluated: Eval would find the empty set without evaluating a rule body.
func (b *Bound) EvalAll(ctx context.Context, ins []*Input) [][]Result {
	out := make([][]Result, len(ins))
	if len(b.queries) == 0 || len(ins) == 0 {
		return out
	}
	values := make([]ast.Value, len(ins))
	errs := make([]error, len(ins))
	var ok []int // the inputs that could be converted
	for i, in := range ins {
		values[i], errs[i] = in.value()
		if errs[i] == nil {
			ok = append(ok, i)
		}
	}
	b.batch.once.Do(b.prepareBatch)
	// byPolicy[j][i] is policy j's results on input i.
	byPolicy := make([][][]Result, len(b.queries))
	for j := range b.queries {
		q := &b.queries[j]
		res := make([][]Result, len(ins))
		byPolicy[j] = res
		for _, i := range failed(len(ins), errs) {
			res[i] = []Result{{Policy: q.policy.Name, Kind: Error, Message: fmt.Sprintf("policy %s could not be given its input: %v", q.policy.Name, errs[i])}}
		}
		if q.err != nil || b.batch.errs[j] != nil {
			for _, i := range ok {
				res[i] = b.evalOne(ctx, q, values[i])
			}
			continue
		}
		var todo []int
		for _, i := range ok {
			if ins[i].Operation != OperationAudit || !b.batch.none[j][ins[i].Kind] {
				todo = append(todo, i)
			}
		}
		oneByOne := false
		for start := 0; start < len(todo); start += BatchSize {
			chunk := todo[start:min(start+BatchSize, len(todo))]
			if !oneByOne {
				timedOut, err := b.evalBatch(ctx, j, chunk, values, res)
				if err == nil {
					continue
				}
				oneByOne = timedOut
			}
			for _, i := range chunk {
				res[i] = b.evalOne(ctx, q, values[i])
			}
		}
	}
	for i := range ins {
		for j := range b.queries {
			out[i] = append(out[i], byPolicy[j][i]...)
		}
	}
	return out
}

// failed returns the indexes i < n with errs[i] != nil.
func failed(n int, errs []error) []int {
	var out []int
	for i := range n {
		if errs[i] != nil {
			out = append(out, i)
		}
	}
	return out
}

// evalBatch runs policy j's batch query on the inputs chunk (indexes into values) and stores
// each input's results in res. On error it stores nothing and says whether time ran out.
func (b *Bound) evalBatch(ctx context.Context, j int, chunk []int, values []ast.Value, res [][]Result) (timedOut bool, err error) {
	name := b.queries[j].policy.Name
	items := make([]*ast.Term, len(chunk))
	for k, i := range chunk {
		items[k] = ast.NewTerm(values[i])
	}
	input := ast.NewObject(ast.Item(ast.StringTerm("items"), ast.ArrayTerm(items...)))
	ctx, cancel := context.WithTimeout(ctx, b.set.timeout)
	defer cancel()
	rs, err := b.batch.qs[j].Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return errors.Is(ctx.Err(), context.DeadlineExceeded) || topdown.IsCancel(err), err
	}
	if len(rs) != 1 {
		return false, fmt.Errorf("batch: %d results", len(rs))
	}
	hits, ok := rs[0].Bindings["out"].([]any)
	if !ok {
		return false, fmt.Errorf("batch: out is a %T", rs[0].Bindings["out"])
	}
	got := make(map[int][]Result, len(hits))
	for _, h := range hits {
		t, ok := h.([]any)
		if !ok || len(t) != 3 {
			return false, fmt.Errorf("batch: element %v", h)
		}
		n, ok := t[0].(json.Number)
		if !ok {
			return false, fmt.Errorf("batch: index %v", t[0])
		}
		k, err := n.Int64()
		if err != nil || k < 0 || int(k) >= len(chunk) {
			return false, fmt.Errorf("batch: index %v", n)
		}
		var rr []Result
		for x, kind := range []Kind{Deny, Warn} {
			elems, ok := t[1+x].([]any)
			if !ok {
				return false, fmt.Errorf("batch: %s is a %T", kind, t[1+x])
			}
			for _, e := range elems {
				r, err := resultOf(e)
				if err != nil {
					return false, err
				}
				r.Policy, r.Kind = name, kind
				rr = append(rr, r)
			}
		}
		got[int(k)] = rr
	}
	for k, i := range chunk {
		res[i] = got[k]
	}
	return false, nil
}

// prepareBatch prepares every policy's batch query against the bound store.
func (b *Bound) prepareBatch() {
	b.batch.qs = make([]rego.PreparedEvalQuery, len(b.queries))
	b.batch.errs = make([]error, len(b.queries))
	b.batch.none = make([]map[string]bool, len(b.queries))
	for j := range b.queries {
		q := &b.queries[j]
		if q.err != nil {
			continue
		}
		b.batch.none[j] = map[string]bool{}
		for _, kind := range AuditKinds {
			b.batch.none[j][kind] = q.policy.ruledOut(b.set.compiler, kind)
		}
		b.batch.qs[j], b.batch.errs[j] = rego.New(
			rego.ParsedQuery(q.policy.batchQuery()),
			rego.Compiler(b.set.compiler),
			rego.Store(b.store),
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(context.Background())
	}
}

// batchQuery is
//
//	out := [[i, deny, warn] | some i, item in input.items
//	        deny := data.rrguard.policies["<name>"].deny with input as item
//	        warn := data.rrguard.policies["<name>"].warn with input as item
//	        count(deny) + count(warn) > 0]
//
// (set() for a set the policy does not define): the inputs on which the policy says something.
func (p *Policy) batchQuery() ast.Body {
	i, item := ast.VarTerm("__rrguard_i"), ast.VarTerm("__rrguard_item")
	body := ast.NewBody(ast.NewExpr(&ast.SomeDecl{Symbols: []*ast.Term{
		ast.Member.Call(i, item, ast.RefTerm(ast.InputRootDocument, ast.StringTerm("items"))),
	}}))
	sets := make([]*ast.Term, 2)
	for x, set := range p.sets() {
		v := ast.VarTerm("__rrguard_" + string(set.kind))
		sets[x] = v
		if !set.defined {
			body.Append(ast.Assign.Expr(v, ast.SetTerm()))
			continue
		}
		e := ast.Assign.Expr(v, ast.RefTerm(set.ref...))
		e.With = []*ast.With{{Target: ast.NewTerm(ast.InputRootRef), Value: item}}
		body.Append(e)
	}
	body.Append(ast.GreaterThan.Expr(ast.Plus.Call(ast.Count.Call(sets[0]), ast.Count.Call(sets[1])), ast.IntNumberTerm(0)))
	compr := ast.ArrayComprehensionTerm(ast.ArrayTerm(i, sets[0], sets[1]), body)
	return ast.NewBody(ast.Assign.Expr(ast.VarTerm("out"), compr))
}

// ruledOut reports whether the rule index of every deny and warn rule of p selects no rule
// for an AUDIT input of the kind, on input.kind and input.operation alone. The index asks
// only for the refs its rules compare with constants; when it asks for another one, the
// answer is no.
func (p *Policy) ruledOut(c *ast.Compiler, kind string) bool {
	r := auditResolver{kind: ast.String(kind)}
	for _, set := range p.sets() {
		if !set.defined {
			continue
		}
		index := c.RuleIndex(set.ref)
		if index == nil {
			return false
		}
		res, err := index.Lookup(r)
		if err != nil || len(res.Rules) > 0 || len(res.Else) > 0 || res.Default != nil {
			return false
		}
	}
	return true
}

var errUnknownRef = errors.New("not known for every input of a kind")

// auditResolver resolves input.kind and input.operation of an AUDIT input, and nothing else.
type auditResolver struct{ kind ast.String }

func (r auditResolver) Resolve(ref ast.Ref) (ast.Value, error) {
	if len(ref) == 2 && ref[0].Equal(ast.InputRootDocument) {
		switch ref[1].Value {
		case ast.String("kind"):
			return r.kind, nil
		case ast.String("operation"):
			return ast.String(OperationAudit), nil
		}
	}
	return nil, errUnknownRef
}
