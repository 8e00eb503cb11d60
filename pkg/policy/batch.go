package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
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
	// audits[j] is policy j's audit set query, when it defines one (auditErrs[j]: could not
	// be prepared).
	audits    []rego.PreparedEvalQuery
	auditErrs []error
}

// AuditKinds are the kinds of the objects an audit gives policies.
var AuditKinds = []string{"Node", "BGPPeer", "BGPConfiguration"}

// EvalAll evaluates every enabled policy on each of ins, the objects of an audit, with the
// results evaluating each input on its own gives: out[i] is what policy by policy, deny before
// warn, the policies say about ins[i].
//
// Each evaluation is bounded by the set's step budget per input; that limit decides, the same
// on every machine however loaded. The wall clock bounds the call as a whole, at the set's
// timeout per input (what evaluating them one by one under a deadline each could take at
// most): if it runs out, every evaluation left reports it.
//
// A policy that defines an audit set (see Policy.Audits) is evaluated once over all the
// inputs when they are all AUDIT ones: input.objects[kind] lists them. When that fails
// (runs out of steps, fails, or gives an element that is no result on an object of the
// state), the policy is evaluated input by input instead.
//
// Each input is converted once and shared by all policies, and a policy is given up to
// BatchSize inputs in one query (`with input as item` per input). A batch gets the steps of
// one input: an input takes at least as many steps in a batch as alone (the batch counts its
// own too), so a batch that finishes within them gives the results of one query per input. A
// batch that does not, or fails, is evaluated again input by input, each within its own
// steps, so that errors are reported on the input they concern. An AUDIT input of a kind for which the policy's rule index selects
// no deny or warn rule (`input.kind == "BGPPeer"` for a Node) is not evaluated: the policy
// would find the empty set without evaluating a rule body.
func (b *Bound) EvalAll(ctx context.Context, ins []*Input) [][]Result {
	return b.evalAll(ctx, ins, BatchSize)
}

// EvalEach is EvalAll without batches: each policy evaluates each input in a query of its
// own, under the same limits. Batches must give exactly its results (tests compare them).
func (b *Bound) EvalEach(ctx context.Context, ins []*Input) [][]Result {
	return b.evalAll(ctx, ins, 1)
}

func (b *Bound) evalAll(ctx context.Context, ins []*Input, batchSize int) [][]Result {
	out := make([][]Result, len(ins))
	if len(b.queries) == 0 || len(ins) == 0 {
		return out
	}
	limit := b.set.timeout * time.Duration(len(ins))
	ctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("the policies' pass over %d objects ran out of its %v (%v per object)", len(ins), limit, b.set.timeout))
	defer cancel()
	conv := convert(ins)
	errs, ok := conv.errs, conv.ok
	b.batch.once.Do(b.prepareBatch)
	var whole *auditState // the audit sets' input, built for the first policy that defines one
	wholeBuilt := false
	// byPolicy[j][i] is policy j's results on input i.
	byPolicy := make([][][]Result, len(b.queries))
	for j := range b.queries {
		q := &b.queries[j]
		res := make([][]Result, len(ins))
		byPolicy[j] = res
		for _, i := range failed(len(ins), errs) {
			res[i] = []Result{{Policy: q.policy.Name, Kind: Error, Message: fmt.Sprintf("policy %s could not be given its input: %v", q.policy.Name, errs[i])}}
		}
		if q.policy.audit && q.err == nil && b.batch.auditErrs[j] == nil && batchSize > 1 {
			if !wholeBuilt {
				whole, wholeBuilt = newAuditState(conv), true
			}
			if whole != nil && b.evalAudit(ctx, j, whole, res) == nil {
				continue
			}
		}
		var todo []int
		for _, i := range ok {
			if q.err != nil || ins[i].Operation != OperationAudit || !b.batch.none[j][ins[i].Kind] {
				todo = append(todo, i)
			}
		}
		for start := 0; start < len(todo); start += batchSize {
			chunk := todo[start:min(start+batchSize, len(todo))]
			if len(chunk) > 1 && q.err == nil && b.batch.errs[j] == nil && b.evalBatch(ctx, j, chunk, conv, res) == nil {
				continue
			}
			for _, i := range chunk {
				res[i] = b.evalOne(ctx, q, conv.value(i), 0)
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

// converted holds the inputs of one EvalAll as Rego values: their objects converted up front
// (the audit sets read them; a conversion error is known before any evaluation), each whole
// input when an evaluation first needs it.
type converted struct {
	ins                []*Input
	objects, oldObject []ast.Value
	names              []string // the objects' metadata.name
	errs               []error
	ok                 []int // the inputs that could be converted
	whole              []ast.Value
}

func convert(ins []*Input) *converted {
	c := &converted{ins: ins, objects: make([]ast.Value, len(ins)), oldObject: make([]ast.Value, len(ins)),
		names: make([]string, len(ins)), errs: make([]error, len(ins)), whole: make([]ast.Value, len(ins))}
	for i, in := range ins {
		c.objects[i], c.oldObject[i], c.errs[i] = in.objects()
		if c.errs[i] != nil {
			continue
		}
		c.ok = append(c.ok, i)
		if in.Converted != nil {
			c.names[i] = in.Converted.name
		} else {
			c.names[i] = objectName(c.objects[i])
		}
	}
	return c
}

// value is input i as policies see it (i must be in ok).
func (c *converted) value(i int) ast.Value {
	if c.whole[i] == nil {
		c.whole[i] = c.ins[i].valueWith(c.objects[i], c.oldObject[i])
	}
	return c.whole[i]
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

// evalBatch runs policy j's batch query on the inputs chunk (indexes into conv) and stores
// each input's results in res. On error (an input out of steps included) it stores nothing.
func (b *Bound) evalBatch(ctx context.Context, j int, chunk []int, conv *converted, res [][]Result) error {
	name := b.queries[j].policy.Name
	items := make([]*ast.Term, len(chunk))
	for k, i := range chunk {
		items[k] = ast.NewTerm(conv.value(i))
	}
	input := ast.NewObject(ast.Item(ast.StringTerm("items"), ast.ArrayTerm(items...)))
	rs, _, err := evalBounded(ctx, b.batch.qs[j], input, b.set.maxSteps)
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return fmt.Errorf("batch: %d results", len(rs))
	}
	hits, ok := rs[0].Bindings["out"].([]any)
	if !ok {
		return fmt.Errorf("batch: out is a %T", rs[0].Bindings["out"])
	}
	got := make(map[int][]Result, len(hits))
	for _, h := range hits {
		t, ok := h.([]any)
		if !ok || len(t) != 3 {
			return fmt.Errorf("batch: element %v", h)
		}
		n, ok := t[0].(json.Number)
		if !ok {
			return fmt.Errorf("batch: index %v", t[0])
		}
		k, err := n.Int64()
		if err != nil || k < 0 || int(k) >= len(chunk) {
			return fmt.Errorf("batch: index %v", n)
		}
		var rr []Result
		for x, kind := range []Kind{Deny, Warn} {
			elems, ok := t[1+x].([]any)
			if !ok {
				return fmt.Errorf("batch: %s is a %T", kind, t[1+x])
			}
			for _, e := range elems {
				r, err := resultOf(e)
				if err != nil {
					return err
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
	return nil
}

// prepareBatch prepares every policy's batch query against the bound store.
func (b *Bound) prepareBatch() {
	b.batch.qs = make([]rego.PreparedEvalQuery, len(b.queries))
	b.batch.errs = make([]error, len(b.queries))
	b.batch.none = make([]map[string]bool, len(b.queries))
	b.batch.audits = make([]rego.PreparedEvalQuery, len(b.queries))
	b.batch.auditErrs = make([]error, len(b.queries))
	for j := range b.queries {
		q := &b.queries[j]
		if q.err != nil {
			continue
		}
		if q.policy.audit {
			b.batch.audits[j], b.batch.auditErrs[j] = rego.New(
				rego.ParsedQuery(q.policy.auditQuery()),
				rego.Compiler(b.set.compiler),
				rego.Store(b.store),
				rego.StrictBuiltinErrors(true),
			).PrepareForEval(context.Background())
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
		e := ast.Assign.Expr(v, ast.SetTerm())
		if set.defined {
			e = ast.Assign.Expr(v, ast.RefTerm(set.ref...))
			e.With = []*ast.With{{Target: ast.NewTerm(ast.InputRootRef), Value: item}}
		}
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
