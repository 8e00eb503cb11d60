package policy

import (
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// auditRule is the name of a policy's whole-state audit set: findings on every object of an
// audited state at once, each element {"kind", "name", and "deny" or "warn"} whose deny or
// warn value is what an element of the policy's deny or warn set would be on that object.
const auditRule = "audit"

// auditQuery is `audit := data.rrguard.policies["<name>"].audit`.
func (p *Policy) auditQuery() ast.Body {
	ref := append(policiesRef.Copy(), ast.StringTerm(p.Name), ast.StringTerm(auditRule))
	return ast.NewBody(ast.Assign.Expr(ast.VarTerm(auditRule), ast.RefTerm(ref...)))
}

// objectKey names an object of an audit: its kind and name.
type objectKey struct{ kind, name string }

// auditState is the input of the audit sets, {"operation": "AUDIT", "objects": {kind: [...]}},
// where objects[kind] lists the objects of that kind (each as input.object would be) in the
// order given; and the index of each object's input by kind and name.
type auditState struct {
	input ast.Value
	index map[objectKey]int
}

// newAuditState builds the audit sets' input from the inputs that could be converted; nil
// when some input is not an AUDIT one or names no object.
func newAuditState(conv *converted) *auditState {
	byKind := map[string][]*ast.Term{}
	index := make(map[objectKey]int, len(conv.ok))
	for _, i := range conv.ok {
		in := conv.ins[i]
		name := conv.names[i]
		k := objectKey{in.Kind, name}
		if _, dup := index[k]; in.Operation != OperationAudit || name == "" || dup {
			return nil
		}
		index[k] = i
		byKind[in.Kind] = append(byKind[in.Kind], ast.NewTerm(conv.objects[i]))
	}
	objects := ast.NewObject()
	for _, kind := range AuditKinds {
		objects.Insert(ast.StringTerm(kind), ast.ArrayTerm(byKind[kind]...))
	}
	return &auditState{
		input: ast.NewObject(
			ast.Item(ast.StringTerm("operation"), ast.StringTerm(OperationAudit)),
			ast.Item(ast.StringTerm("objects"), ast.NewTerm(objects)),
		),
		index: index,
	}
}

// objectName is metadata.name of a converted object ("" when it has none).
func objectName(obj ast.Value) string {
	for _, key := range []string{"metadata", "name"} {
		o, ok := obj.(ast.Object)
		if !ok {
			return ""
		}
		t := o.Get(ast.InternedTerm(key))
		if t == nil {
			return ""
		}
		obj = t.Value
	}
	name, _ := obj.(ast.String)
	return string(name)
}

// evalAudit evaluates policy j's audit set once over the state and stores each object's
// results in res, deny before warn, each in the order Rego sorts the policy's own sets. Its
// step budget is the sum of the objects' budgets. On any error (out of steps or time, an
// element that names no object of the state or is not a result) it stores nothing: the
// caller then evaluates the policy object by object.
func (b *Bound) evalAudit(ctx context.Context, j int, st *auditState, res [][]Result) error {
	name := b.queries[j].policy.Name
	rs, _, err := evalBounded(ctx, b.batch.audits[j], st.input, b.set.maxSteps*len(st.index))
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return fmt.Errorf("audit: %d results", len(rs))
	}
	elems, ok := rs[0].Bindings[auditRule].([]any)
	if !ok {
		return fmt.Errorf("audit is a %T, not a set", rs[0].Bindings[auditRule])
	}
	type found struct {
		i    int
		kind Kind
		elem any
		key  ast.Value // elem as Rego orders it
	}
	all := make([]found, 0, len(elems))
	for _, e := range elems {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("audit element %v is not an object", e)
		}
		kind, _ := m["kind"].(string)
		obj, _ := m["name"].(string)
		i, ok := st.index[objectKey{kind, obj}]
		if !ok || len(m) != 3 {
			return fmt.Errorf(`audit element %v: want {"kind", "name", and "deny" or "warn"} naming an object of the state`, e)
		}
		f := found{i: i}
		switch {
		case m["deny"] != nil:
			f.kind, f.elem = Deny, m["deny"]
		case m["warn"] != nil:
			f.kind, f.elem = Warn, m["warn"]
		default:
			return fmt.Errorf(`audit element %v has neither "deny" nor "warn"`, e)
		}
		if f.key, err = ast.InterfaceToValue(f.elem); err != nil {
			return err
		}
		all = append(all, f)
	}
	slices.SortFunc(all, func(x, y found) int {
		switch {
		case x.i != y.i:
			return x.i - y.i
		case x.kind != y.kind:
			if x.kind == Deny {
				return -1
			}
			return 1
		}
		return ast.Compare(x.key, y.key)
	})
	got := make(map[int][]Result, len(all))
	for _, f := range all {
		r, err := resultOf(f.elem)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", f.kind, err)
		}
		r.Policy, r.Kind = name, f.kind
		got[f.i] = append(got[f.i], r)
	}
	for _, i := range st.index {
		res[i] = got[i]
	}
	return nil
}
