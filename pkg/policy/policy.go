// Package policy runs Rego policies inside rrguard: it loads the shipped policies and the
// user's (--policy-dir), compiles them once with only deterministic, side-effect-free
// built-ins, binds them to a cluster state held in OPA's in-memory store, and evaluates them
// per admission request or audited object under a deadline. It knows nothing of rrguard's
// rules: pkg/validate turns its Results into findings.
package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A policy is the Rego package rrguard.policies.<name>; <name> is its rule ID.
const PackagePrefix = "rrguard.policies"

// DefaultTimeout is how long one policy may take on one input.
const DefaultTimeout = 100 * time.Millisecond

// Kind says what a result is.
type Kind string

// The result kinds.
const (
	// Deny is an element of the policy's deny set.
	Deny Kind = "deny"
	// Warn is an element of the policy's warn set.
	Warn Kind = "warn"
	// Error says the policy failed or ran out of time on this input: rrguard reports it
	// instead of letting the change through unchecked.
	Error Kind = "error"
)

// Result is one thing a policy said about one input.
type Result struct {
	Policy  string
	Kind    Kind
	Message string
	// Field is the field path the policy named ("" if none).
	Field string
}

// Policy is one loaded policy.
type Policy struct {
	// Name is the rule ID: the last element of the package path.
	Name string
	// Title and Description come from the package's METADATA block.
	Title, Description string
	// Default is the action the METADATA asks for when rrguard.yaml says nothing
	// (custom.default: deny, warn, audit or off); "" means by result: deny for deny
	// results, warn for warn results.
	Default string
	// Files are the files that make up the package.
	Files []string
	// Shipped is true for the policies built into rrguard.
	Shipped bool

	deny, warn bool
	audit      bool // defines the whole-state audit set (see EvalAll)
	line       int  // of the package clause in Files[0]
}

// Defines reports whether the policy has a deny (or warn) set.
func (p *Policy) Defines(k Kind) bool {
	switch k {
	case Deny:
		return p.deny
	case Warn:
		return p.warn
	}
	return false
}

// Audits reports whether the policy defines audit, the set of its findings on a whole state,
// which an audit evaluates once instead of deny and warn once per object.
func (p *Policy) Audits() bool { return p.audit }

// Set is a compiled set of policies. It is never changed once built; a reload builds a new one.
type Set struct {
	policies []*Policy
	compiler *ast.Compiler
	params   ast.Value
	timeout  time.Duration
	maxSteps int
	digest   string
}

// Options says where policies come from.
type Options struct {
	// Dirs are the user's policy directories (a mounted ConfigMap works: entries whose names
	// start with a dot, such as ..data, are skipped, symbolic links are followed).
	Dirs []string
	// Timeout bounds one policy's evaluation on one admission request (DefaultTimeout when
	// zero); an audit of n objects runs under n times it as a whole (see EvalAll).
	Timeout time.Duration
	// MaxSteps bounds one policy's evaluation on one input in evaluation steps
	// (DefaultMaxSteps when zero): the limit that decides, the same on every machine.
	MaxSteps int
	// Reserved are names no policy may take (rrguard's built-in rule IDs).
	Reserved []string
	// NoShipped leaves out the policies shipped with rrguard (the rrguard.lib helpers stay).
	NoShipped bool
	// Tests loads *_test.rego files too, for `rrguard policy test`.
	Tests bool
}

// Policies returns the policies of the set, by name.
func (s *Set) Policies() []*Policy { return s.policies }

// Policy returns the named policy, or nil.
func (s *Set) Policy(name string) *Policy {
	i, ok := slices.BinarySearchFunc(s.policies, name, func(p *Policy, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil
	}
	return s.policies[i]
}

// Current returns s: a fixed set is its own source (see Watcher for a reloading one).
func (s *Set) Current() *Set { return s }

// Timeout is the per-evaluation deadline of admission requests.
func (s *Set) Timeout() time.Duration { return s.timeout }

// outOfSteps is the message of an evaluation that ran out of steps.
func (s *Set) outOfSteps() string {
	return fmt.Sprintf("did not finish within %d evaluation steps; rrguard reports it rather than let the change through unchecked", s.maxSteps)
}

// Problem is one thing wrong in a policy file.
type Problem struct {
	File    string
	Line    int
	Message string
}

func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Message
	case p.Line == 0:
		return p.File + ": " + p.Message
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

// LoadError is a policy set that could not be loaded; the set in use stays as it was.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return "policy: " + lines[0]
	}
	return fmt.Sprintf("policy: %d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Load reads and compiles a policy set.
func Load(opts Options) (*Set, error) {
	src, err := read(opts)
	if err != nil {
		return nil, err
	}
	return compile(src, opts)
}

var policyName = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)

// ValidName reports whether name can name a policy: lower-case letters, digits, dashes and
// underscores, starting and ending with a letter or digit.
func ValidName(name string) bool { return policyName.MatchString(name) }

// reservedPaths are parts of data rrguard fills in itself.
var reservedPaths = []ast.Ref{
	ast.MustParseRef("data.rrguard.cluster"),
	ast.MustParseRef("data.rrguard.params"),
	ast.MustParseRef("data.rrguard.lib"),
}

var policiesRef = ast.MustParseRef("data." + PackagePrefix)

// parse parses the modules and checks their packages.
func parse(files []file, reserved []string) (map[string]*ast.Module, []Problem) {
	var problems []Problem
	modules := make(map[string]*ast.Module, len(files))
	for _, f := range files {
		m, err := ast.ParseModuleWithOpts(f.name, string(f.data), ast.ParserOptions{
			RegoVersion: ast.RegoV1, ProcessAnnotation: true, Capabilities: capabilities(),
		})
		if err != nil {
			problems = append(problems, astProblems(err, f.name)...)
			continue
		}
		if m == nil {
			problems = append(problems, Problem{File: f.name, Message: "empty module: a policy file needs a package"})
			continue
		}
		path := m.Package.Path
		for _, r := range reservedPaths {
			if path.HasPrefix(r) && !(f.lib && path.Equal(r)) {
				problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row,
					Message: fmt.Sprintf("package %s: %s is filled in by rrguard; put policies under package %s.<name>", path, r, PackagePrefix)})
			}
		}
		if path.HasPrefix(policiesRef) && !f.test {
			name, ok := nameOf(path)
			switch {
			case !ok:
				problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row,
					Message: fmt.Sprintf("package %s: a policy is exactly %s.<name> (for example package %s[\"my-policy\"]); put helpers in a package outside %s",
						path, PackagePrefix, PackagePrefix, PackagePrefix)})
			case !policyName.MatchString(name):
				problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row,
					Message: fmt.Sprintf("policy name %q: use lower-case letters, digits and dashes (it becomes the rule ID), e.g. package %s[\"my-policy\"]", name, PackagePrefix)})
			case slices.Contains(reserved, name):
				problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row,
					Message: fmt.Sprintf("policy name %q is a built-in rule ID: pick another name", name)})
			}
		}
		modules[f.name] = m
	}
	return modules, problems
}

// nameOf returns <name> of a package data.rrguard.policies.<name>.
func nameOf(path ast.Ref) (string, bool) {
	if len(path) != len(policiesRef)+1 {
		return "", false
	}
	s, ok := path[len(policiesRef)].Value.(ast.String)
	return string(s), ok
}

func compile(src *sources, opts Options) (*Set, error) {
	modules, problems := parse(src.rego, opts.Reserved)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	c := ast.NewCompiler().WithCapabilities(capabilities()).WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(false)
	if c.Compile(modules); c.Failed() {
		return nil, &LoadError{Problems: astProblems(c.Errors, "")}
	}
	byName := map[string]*Policy{}
	for _, f := range src.rego {
		m := modules[f.name]
		name, ok := nameOf(m.Package.Path)
		if f.test || !ok || !m.Package.Path.HasPrefix(policiesRef) {
			continue
		}
		p := byName[name]
		if p == nil {
			p = &Policy{Name: name, Shipped: f.shipped, line: m.Package.Location.Row}
			byName[name] = p
		}
		if f.shipped != p.Shipped {
			problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row,
				Message: fmt.Sprintf("policy %s is shipped with rrguard: give yours another package name (rules.%s in rrguard.yaml turns the shipped one on or off)", name, name)})
			continue
		}
		p.Files = append(p.Files, f.name)
		if err := p.readMetadata(m); err != nil {
			problems = append(problems, Problem{File: f.name, Line: m.Package.Location.Row, Message: err.Error()})
		}
		for _, r := range m.Rules {
			kind := r.Head.Ref().String()
			if kind == auditRule {
				if r.Head.RuleKind() != ast.MultiValue {
					problems = append(problems, Problem{File: f.name, Line: r.Location.Row,
						Message: fmt.Sprintf("policy %s: audit must be a set: write `audit contains {\"kind\": ..., \"name\": ..., \"deny\": ...} if { ... }`", name)})
				}
				p.audit = true
				continue
			}
			if kind != string(Deny) && kind != string(Warn) {
				continue
			}
			if r.Head.RuleKind() != ast.MultiValue {
				problems = append(problems, Problem{File: f.name, Line: r.Location.Row,
					Message: fmt.Sprintf("policy %s: %s must be a set: write `%s contains {\"msg\": ..., \"field\": ...} if { ... }`", name, kind, kind)})
				continue
			}
			if kind == string(Deny) {
				p.deny = true
			} else {
				p.warn = true
			}
		}
	}
	out := &Set{compiler: c, timeout: opts.Timeout, maxSteps: opts.MaxSteps, digest: src.digest}
	if out.timeout <= 0 {
		out.timeout = DefaultTimeout
	}
	if out.maxSteps <= 0 {
		out.maxSteps = DefaultMaxSteps
	}
	for _, p := range byName {
		if !p.deny && !p.warn && !opts.Tests {
			problems = append(problems, Problem{File: p.Files[0], Line: p.line, Message: fmt.Sprintf("policy %s has no deny or warn rule: write `deny contains msg if { ... }`", p.Name)})
		}
		out.policies = append(out.policies, p)
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	sort.Slice(out.policies, func(i, j int) bool { return out.policies[i].Name < out.policies[j].Name })
	params, err := ast.InterfaceToValue(src.params)
	if err != nil {
		return nil, &LoadError{Problems: []Problem{{Message: fmt.Sprintf("params: %v", err)}}}
	}
	out.params = params
	return out, nil
}

// readMetadata takes the title, description and custom.default of the package's METADATA.
func (p *Policy) readMetadata(m *ast.Module) error {
	for _, a := range m.Annotations {
		if a.Scope != "package" && a.Scope != "subpackages" {
			continue
		}
		if a.Title != "" {
			p.Title = a.Title
		}
		if a.Description != "" {
			p.Description = strings.TrimSpace(a.Description)
		}
		d, ok := a.Custom["default"]
		if !ok {
			continue
		}
		switch v := d.(type) {
		case bool:
			if v {
				return fmt.Errorf("policy %s: METADATA custom.default must be deny, warn, audit or off, not true", p.Name)
			}
			p.Default = "off" // YAML reads an unquoted off as false
		case string:
			switch v {
			case "deny", "warn", "audit", "off":
				p.Default = v
			default:
				return fmt.Errorf("policy %s: METADATA custom.default must be deny, warn, audit or off, not %q", p.Name, v)
			}
		default:
			return fmt.Errorf("policy %s: METADATA custom.default must be deny, warn, audit or off", p.Name)
		}
	}
	return nil
}

// astProblems turns OPA's errors into problems with file and line.
func astProblems(err error, file string) []Problem {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return []Problem{{File: file, Message: err.Error()}}
	}
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		p := Problem{File: file, Message: refusedMessage(e.Message)}
		if e.Location != nil {
			p.File, p.Line = e.Location.File, e.Location.Row
		}
		out = append(out, p)
	}
	return out
}
