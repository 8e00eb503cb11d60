package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// The operation of an input that is not an admission request but an object of an audited
// cluster state (the periodic audit, `rrguard validate`).
const OperationAudit = "AUDIT"

// Input is what a policy sees as input.
type Input struct {
	// Operation is CREATE, UPDATE, DELETE or AUDIT.
	Operation string
	// Kind is Node, BGPPeer or BGPConfiguration; Group is the API group the object came in
	// ("" for a core/v1 Node).
	Kind, Group string
	// Object and OldObject are the object after and before the change in projectcalico.org/v3
	// form (nil when absent): JSON-like values (map[string]any, []any, string, bool, int64,
	// json.Number, map[string]string, []string).
	Object, OldObject map[string]any
	// Converted is Object converted already (Convert), when the caller keeps converted
	// objects across evaluations; Object is then not read.
	Converted *Converted
	UserInfo  *UserInfo
	DryRun    bool
	// Findings are the built-in rules' findings on this object.
	Findings []Finding
}

// UserInfo is who asked for the change.
type UserInfo struct {
	Username, UID string
	Groups        []string
	Extra         map[string][]string
}

// Finding is a built-in finding as policies see it.
type Finding struct {
	Rule, Action, Field, Message string
}

func (in *Input) value() (ast.Value, error) {
	obj, old, err := in.objects()
	if err != nil {
		return nil, err
	}
	return in.valueWith(obj, old), nil
}

// Converted is an object as policies read it, converted once: it is never modified, so it can
// be given (Input.Converted) to any number of evaluations, concurrent ones included.
type Converted struct {
	v    ast.Value
	name string // metadata.name ("" when it has none)
}

// Convert converts an object (a JSON-like value, see Input; parts of it may be converted
// already) for policies to read.
func Convert(obj map[string]any) (*Converted, error) {
	v, err := toValue(obj)
	if err != nil {
		return nil, err
	}
	return &Converted{v: v, name: objectName(v)}, nil
}

// toValue converts a JSON-like value (see Input) in which a value of a map[string]any may be
// a *Converted: that one is taken as it is.
func toValue(x any) (ast.Value, error) {
	switch x := x.(type) {
	case *Converted:
		if x == nil {
			return ast.Null{}, nil
		}
		return x.v, nil
	case map[string]any:
		items := make([][2]*ast.Term, 0, len(x))
		for k, v := range x {
			tv, err := toValue(v)
			if err != nil {
				return nil, err
			}
			items = append(items, ast.Item(ast.StringTerm(k), ast.NewTerm(tv)))
		}
		return ast.NewObject(items...), nil
	}
	return ast.InterfaceToValue(x)
}

// objects converts input.object and input.oldObject (nil for an absent one).
func (in *Input) objects() (obj, old ast.Value, err error) {
	if in.Converted != nil {
		obj = in.Converted.v
	} else if in.Object != nil {
		if obj, err = ast.InterfaceToValue(in.Object); err != nil {
			return nil, nil, fmt.Errorf("object: %w", err)
		}
	}
	if in.OldObject != nil {
		if old, err = ast.InterfaceToValue(in.OldObject); err != nil {
			return nil, nil, fmt.Errorf("oldObject: %w", err)
		}
	}
	return obj, old, nil
}

// valueWith is the input with its objects converted already.
func (in *Input) valueWith(obj, old ast.Value) ast.Value {
	items := [][2]*ast.Term{
		ast.Item(ast.InternedTerm("operation"), ast.StringTerm(in.Operation)),
		ast.Item(ast.InternedTerm("kind"), ast.StringTerm(in.Kind)),
		ast.Item(ast.InternedTerm("group"), ast.StringTerm(in.Group)),
		ast.Item(ast.InternedTerm("dryRun"), ast.InternedTerm(in.DryRun)),
	}
	if obj != nil {
		items = append(items, ast.Item(ast.InternedTerm("object"), ast.NewTerm(obj)))
	}
	if old != nil {
		items = append(items, ast.Item(ast.InternedTerm("oldObject"), ast.NewTerm(old)))
	}
	if u := in.UserInfo; u != nil {
		extra := ast.NewObject()
		for k, vs := range u.Extra {
			extra.Insert(ast.StringTerm(k), stringArray(vs))
		}
		items = append(items, ast.Item(ast.StringTerm("userInfo"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("username"), ast.StringTerm(u.Username)),
			ast.Item(ast.StringTerm("uid"), ast.StringTerm(u.UID)),
			ast.Item(ast.StringTerm("groups"), stringArray(u.Groups)),
			ast.Item(ast.StringTerm("extra"), ast.NewTerm(extra)),
		)))
	}
	findings := make([]*ast.Term, len(in.Findings))
	for i, f := range in.Findings {
		findings[i] = ast.ObjectTerm(
			ast.Item(ast.StringTerm("rule"), ast.StringTerm(f.Rule)),
			ast.Item(ast.StringTerm("action"), ast.StringTerm(f.Action)),
			ast.Item(ast.StringTerm("field"), ast.StringTerm(f.Field)),
			ast.Item(ast.StringTerm("message"), ast.StringTerm(f.Message)),
		)
	}
	items = append(items, ast.Item(ast.InternedTerm("findings"), ast.ArrayTerm(findings...)))
	return ast.NewObject(items...)
}

func stringArray(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

// Bound is a policy set bound to one cluster state: the state is in an in-memory store and
// every enabled policy's query is prepared, so that an evaluation compiles and converts
// nothing but its input. A Bound is safe for concurrent use.
type Bound struct {
	set     *Set
	store   storage.Store
	queries []query
	batch   batchQueries
}

type query struct {
	policy *Policy
	q      rego.PreparedEvalQuery
	err    error
}

// Bind loads cluster (a JSON-like document, see Input for the types, any part of which may
// be a *Converted) into a store as data.rrguard.cluster, with the set's parameters as
// data.rrguard.params, and prepares the policies enabled says to run. A policy that cannot be
// prepared reports an Error result on every evaluation.
func (s *Set) Bind(cluster map[string]any, enabled func(*Policy) bool) *Bound {
	b := &Bound{set: s}
	var run []*Policy
	for _, p := range s.policies {
		if enabled == nil || enabled(p) {
			run = append(run, p)
		}
	}
	if len(run) == 0 {
		return b
	}
	store, err := s.store(cluster)
	b.store = store
	for _, p := range run {
		qr := query{policy: p, err: err}
		if err == nil {
			qr.q, qr.err = rego.New(
				rego.ParsedQuery(p.query()),
				rego.Compiler(s.compiler),
				rego.Store(store),
				rego.StrictBuiltinErrors(true),
			).PrepareForEval(context.Background())
		}
		b.queries = append(b.queries, qr)
	}
	return b
}

func (s *Set) store(cluster map[string]any) (storage.Store, error) {
	v, err := toValue(cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster data: %w", err)
	}
	root := ast.NewObject(ast.Item(ast.StringTerm("rrguard"), ast.ObjectTerm(
		ast.Item(ast.StringTerm("cluster"), ast.NewTerm(v)),
		ast.Item(ast.StringTerm("params"), ast.NewTerm(s.params)),
	)))
	return inmem.NewFromASTObject(root), nil
}

// query is `deny := data.rrguard.policies["<name>"].deny; warn := ...warn` for the sets the
// policy defines.
func (p *Policy) query() ast.Body {
	var body ast.Body
	for _, set := range p.sets() {
		if set.defined {
			body.Append(ast.Assign.Expr(ast.VarTerm(string(set.kind)), ast.RefTerm(set.ref...)))
		}
	}
	return body
}

// policySet is one of a policy's two result sets: data.rrguard.policies["<name>"].deny or .warn.
type policySet struct {
	kind    Kind
	defined bool
	ref     ast.Ref
}

// sets returns the policy's deny and warn sets, in that order, saying which it defines.
func (p *Policy) sets() [2]policySet {
	ref := func(k Kind) ast.Ref {
		return append(policiesRef.Copy(), ast.StringTerm(p.Name), ast.StringTerm(string(k)))
	}
	return [2]policySet{{Deny, p.deny, ref(Deny)}, {Warn, p.warn, ref(Warn)}}
}

// Policies returns the policies the bound set runs.
func (b *Bound) Policies() []*Policy {
	out := make([]*Policy, len(b.queries))
	for i := range b.queries {
		out[i] = b.queries[i].policy
	}
	return out
}

// Eval runs every enabled policy on an admission request's input, each within the set's
// step budget and under its per-evaluation deadline (the request must be answered in time).
// Results come policy by policy, deny before warn, in the order Rego sorts them.
func (b *Bound) Eval(ctx context.Context, in *Input) []Result {
	if len(b.queries) == 0 {
		return nil
	}
	v, err := in.value()
	var out []Result
	for i := range b.queries {
		q := &b.queries[i]
		if err != nil {
			out = append(out, Result{Policy: q.policy.Name, Kind: Error, Message: fmt.Sprintf("policy %s could not be given its input: %v", q.policy.Name, err)})
			continue
		}
		out = append(out, b.evalOne(ctx, q, v, b.set.timeout)...)
	}
	return out
}

// evalOne evaluates one policy on one input within the step budget and, when perEval > 0,
// under a deadline of its own (else until ctx is done).
func (b *Bound) evalOne(ctx context.Context, q *query, input ast.Value, perEval time.Duration) []Result {
	name := q.policy.Name
	fail := func(format string, args ...any) []Result {
		return []Result{{Policy: name, Kind: Error, Message: fmt.Sprintf("policy %s: %s", name, fmt.Sprintf(format, args...))}}
	}
	if q.err != nil {
		return fail("cannot be prepared: %v", q.err)
	}
	if perEval > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, perEval)
		defer cancel()
	}
	rs, stopped, err := evalBounded(ctx, q.q, input, b.set.maxSteps)
	switch {
	case stopped == outOfSteps:
		return fail("%s", b.set.outOfSteps())
	case stopped == outOfTime && perEval > 0:
		return fail("did not finish within %v; rrguard reports it rather than let the change through unchecked", perEval)
	case stopped == outOfTime:
		return fail("did not finish: %v", context.Cause(ctx))
	case err != nil:
		return fail("evaluation failed: %v", err)
	case len(rs) == 0:
		return nil
	}
	var out []Result
	for _, kind := range []Kind{Deny, Warn} {
		v, ok := rs[0].Bindings[string(kind)]
		if !ok {
			continue
		}
		elems, ok := v.([]any)
		if !ok {
			return fail("%s is a %T, not a set", kind, v)
		}
		for _, e := range elems {
			r, err := resultOf(e)
			if err != nil {
				return fail("%s: %v", kind, err)
			}
			r.Policy, r.Kind = name, kind
			out = append(out, r)
		}
	}
	return out
}

// resultOf reads one element of a deny or warn set: a string, or {"msg": ..., "field": ...}.
func resultOf(e any) (Result, error) {
	switch x := e.(type) {
	case string:
		return Result{Message: x}, nil
	case map[string]any:
		msg, ok := x["msg"].(string)
		if !ok {
			return Result{}, fmt.Errorf(`an object result needs a string "msg", got %v`, slices.Sorted(maps.Keys(x)))
		}
		r := Result{Message: msg}
		if f, ok := x["field"]; ok {
			if r.Field, ok = f.(string); !ok {
				return Result{}, fmt.Errorf(`"field" must be a string such as "spec.peerSelector", not %v`, f)
			}
		}
		return r, nil
	}
	return Result{}, fmt.Errorf(`an element must be a string or {"msg": ..., "field": ...}, not %v`, e)
}

// Policy returns the named policy of the bound set, or nil.
func (b *Bound) Policy(name string) *Policy { return b.set.Policy(name) }
