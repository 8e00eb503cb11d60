package validate

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A Rule is one built-in check, whole: its ID, default action, documentation and the check.
// The catalogue (Rules) is the one place rules are listed; `rrguard rules`, the README's rule
// table and docs/rules.md are printed from it. How rules depend on one another is declared
// here, as data, and checked when the catalogue is made (catalogue.go): which findings count
// as a break (breaks), which check is skipped once another rule has found something (unless),
// which rule words a problem another finds (reportedBy).
type Rule struct {
	ID      string
	Default Action
	// Summary is one line (`rrguard rules`, the README); Doc says what the rule protects
	// against (docs/rules.md); Example is a message it gives, taken from its own test case
	// (examples.go, checked by TestRules).
	Summary, Doc, Example string

	// object checks one object alone.
	object func(e *Engine, o *calico.Object) []Finding
	// checks ask questions of the whole topology (a rule may ask several).
	checks []checker
	// change explains a change from the findings about it (reflector-removal).
	change func(e *Engine, ch model.Change, found []Finding) *Finding
	// breaks: its deny-level findings about a change mean the change breaks the topology
	// (what reflector-removal explains).
	breaks bool
}

// checker is one question a rule asks of a topology: check[D] for problems carrying data D.
type checker interface {
	// opts returns how the check takes part in a judgment.
	opts() *checkOpts
	// findings asks the question of s and words what the judgment reports: everything when
	// it is whole (or the check always reports), else what base (whose problems are had, by
	// indexKey) did not have.
	findings(j *judgment, s, base *model.Snapshot, had func() map[string]bool) []Finding
	// keys returns the index keys of the problems it finds in s (see introduced).
	keys(e *Engine, s *model.Snapshot) map[string]bool
}

// checkOpts are what a check declares besides its question.
type checkOpts struct {
	// applies says whether the check runs in a judgment (nil: always); it reads the judgment
	// and the configuration, never another rule's findings (unless says that).
	applies func(j *judgment) bool
	// unless: the check is skipped once the judgment has findings of these rules (which the
	// catalogue lists before it).
	unless []string
	// always: the problems are reported whether or not the state before had them (they say
	// that the change could not be checked).
	always bool
	// singlePoints: its problems are single points of failure (a change that introduces one
	// leaves some node worse off: see monotone).
	singlePoints bool
	// declared: its problems break what rrguard.yaml declares (clusterIDPolicy), whatever the
	// routes do: refused even in a change that leaves every node as well off (monotone).
	declared bool
	// model: its problems are a function of the BGP model (classes, sessions, gaps), the
	// mesh, the BGPPeers, BGPFilters and IPPools and, of the nodes' labels, the reflector label
	// only. A change that leaves all of these as they were (see judgment.sameModel) introduces
	// none of them, and the check does not run.
	model bool
}

// A check is one question a rule asks of a topology: problems finds what is wrong in a
// snapshot, render words the parts a judgment reports; D is what a problem tells render.
type check[D any] struct {
	checkOpts
	problems func(e *Engine, s *model.Snapshot) []problem[D]
	render   func(j *judgment, s *model.Snapshot, parts []part[D]) []Finding
}

// A problem is one thing a check finds, before it is worded: what is wrong (key) and the
// classes of nodes it is about. Problems are what admission compares (see introduced).
type problem[D any] struct {
	// key says what is wrong apart from the nodes: a cause, a cluster ID, a BGPPeer's field.
	key string
	// classes are the classes of nodes the problem is about (none: the key says it all).
	classes []int
	// reportedBy names the rule that words this problem instead ("": this check's): it
	// counts as present (a change does not introduce it) but is not reported here.
	reportedBy string
	// data is what render needs.
	data D
}

// A part is the piece of a problem a judgment reports: per class of the problem, the members.
type part[D any] struct {
	problem[D]
	members [][]string
}

func (c check[D]) opts() *checkOpts { return &c.checkOpts }

func (c check[D]) findings(j *judgment, s, base *model.Snapshot, had func() map[string]bool) []Finding {
	ps := c.problems(j.e, s)
	if len(ps) == 0 {
		return nil
	}
	var parts []part[D]
	if j.whole || c.always {
		parts = wholeParts(s, ps)
	} else {
		parts = introduced(s, base, ps, had())
	}
	if len(parts) == 0 {
		return nil
	}
	return c.render(j, s, parts)
}

func (c check[D]) keys(e *Engine, s *model.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, p := range c.problems(e, s) {
		out[indexKey(p.key, p.classes)] = true
	}
	return out
}

// A judgment is one Evaluate or Audit.
type judgment struct {
	e *Engine
	// ch is the change judged (nil in an audit).
	ch *model.Change
	// whole: the resulting topology is judged whole, not only what the change introduces (an
	// audit, or a change that turns the node-to-node mesh off).
	whole bool
	// found are the topology findings so far, in catalogue order.
	found []Finding
	// newSinglePoints: a single point of failure was introduced (see monotone).
	newSinglePoints bool
	// sameModel: the change is to a Node and leaves the BGP model, the mesh and the node's
	// reflector label as they were (a label no selector reads, an annotation): checks marked
	// model find what the state before had.
	sameModel bool
}

// topology runs every rule's checks on s in catalogue order. Unless the judgment is whole,
// only what s has and base had not is reported.
func (j *judgment) topology(s, base *model.Snapshot) []Finding {
	for r := range Rules {
		rule := &Rules[r]
		for c, ck := range rule.checks {
			o := ck.opts()
			if o.applies != nil && !o.applies(j) {
				continue
			}
			if o.model && j.sameModel && !j.whole && !o.always && !j.e.everyCheck {
				continue
			}
			if slices.ContainsFunc(j.found, func(f Finding) bool { return slices.Contains(o.unless, f.Rule) }) {
				continue
			}
			found := ck.findings(j, s, base, func() map[string]bool { return j.e.index(base, r, c) })
			for i := range found {
				found[i].declared = o.declared
			}
			if len(found) > 0 {
				j.found = append(j.found, found...)
				j.newSinglePoints = j.newSinglePoints || o.singlePoints
			}
		}
	}
	return j.found
}

// wholeParts reports every problem with all its members.
func wholeParts[D any](s *model.Snapshot, ps []problem[D]) []part[D] {
	var out []part[D]
	for _, p := range ps {
		if p.reportedBy != "" {
			continue
		}
		pt := part[D]{problem: p, members: make([][]string, len(p.classes))}
		for i, c := range p.classes {
			pt.members[i] = members(s, c)
		}
		out = append(out, pt)
	}
	return out
}

// introduced returns the parts of the problems of s that base did not have: the one rule of
// admission ("report what a change introduces"). A problem without classes is new when base
// has none with its key. A problem about classes is split by the class each member had in
// base, and a piece is new unless base had the same problem (key) on those classes; members
// base did not have or that took no part in BGP are new.
func introduced[D any](s, base *model.Snapshot, ps []problem[D], had map[string]bool) []part[D] {
	var out []part[D]
	for _, p := range ps {
		if p.reportedBy != "" {
			continue
		}
		if len(p.classes) == 0 {
			if !had[p.key] {
				out = append(out, part[D]{problem: p})
			}
			continue
		}
		// Members of each class, grouped by their class in base.
		groups := make([][]baseGroup, len(p.classes))
		for i, c := range p.classes {
			groups[i] = groupByBaseClass(base, members(s, c))
		}
		var walk func(i int, bc []int, ms [][]string)
		walk = func(i int, bc []int, ms [][]string) {
			if i == len(groups) {
				if !had[indexKey(p.key, bc)] {
					out = append(out, part[D]{problem: p, members: slices.Clone(ms)})
				}
				return
			}
			for _, g := range groups[i] {
				walk(i+1, append(bc, g.class), append(ms, g.names))
			}
		}
		walk(0, nil, nil)
	}
	return out
}

type baseGroup struct {
	class int // −1: not in base, or taking no part in BGP there
	names []string
}

// groupByBaseClass splits node names by their class in base, in order of first appearance.
func groupByBaseClass(base *model.Snapshot, names []string) []baseGroup {
	var out []baseGroup
	at := map[int]int{}
	for _, n := range names {
		c := base.Analysis.Class(n)
		i, ok := at[c]
		if !ok {
			i = len(out)
			at[c] = i
			out = append(out, baseGroup{class: c})
		}
		out[i].names = append(out[i].names, n)
	}
	return out
}

// indexKey identifies a problem in a snapshot: its key and its classes. A class of −1 never
// matches (indexKey is only looked up with it).
func indexKey(key string, classes []int) string {
	var b strings.Builder
	b.WriteString(key)
	for _, c := range classes {
		b.WriteByte('|')
		b.WriteString(strconv.Itoa(c))
	}
	return b.String()
}

// index returns the problems check c of rule r finds in s, by indexKey: computed once per
// snapshot, engine and check (kept in the snapshot's memo), and shared by every decision
// taken against the snapshot.
func (e *Engine) index(s *model.Snapshot, r, c int) map[string]bool {
	v, _ := s.Memo.LoadOrStore(indexID{e, r, c}, &problemIndex{})
	ix := v.(*problemIndex)
	ix.once.Do(func() { ix.had = Rules[r].checks[c].keys(e, s) })
	return ix.had
}

type indexID struct {
	e    *Engine
	r, c int
}

type problemIndex struct {
	once sync.Once
	had  map[string]bool
}

// finding is the one way to make a finding: rule, object, field (may be "") and message. Its
// key is the rule, the field and the message, so that admission reports a finding on an
// object only when the object before the change did not have it.
func finding(rule string, ref ObjectRef, fld, msg string) Finding {
	return Finding{Rule: rule, Object: ref, Field: fld, Message: msg, key: rule + "|" + fld + "|" + msg}
}

// unchecked marks a finding that says a check could not be done: it never refuses a change.
func unchecked(f Finding) Finding {
	f.warnAtMost = true
	return f
}

// Paths of the fields rules name (a node's BGP fields: calico.Node.FieldPath).
var (
	specPath         = field.NewPath("spec")
	nodeSelectorPath = specPath.Child("nodeSelector").String()
	peerSelectorPath = specPath.Child("peerSelector").String()
	peerIPPath       = specPath.Child("peerIP").String()
	specNodePath     = specPath.Child("node").String()
	asNumberPath     = specPath.Child("asNumber").String()
	meshPath         = specPath.Child("nodeToNodeMeshEnabled").String()
	labelsPath       = field.NewPath("metadata", "labels").String()
	metadataNamePath = field.NewPath("metadata", "name").String()
	calicoLabelsPath = field.NewPath("metadata", "annotations").Key(calico.AnnotationLabels).String()
)
