// Package live plays acceptance scenarios (see package scenario) against a real API server, each
// step done the way a user does it (calicoctl, kubectl annotate/label, kubectl apply/delete), and
// returns what the API server answered: allowed or refused, the refusal text and the rule IDs it
// names, the admission warnings printed. Check compares that with what a step expects. The live
// tests (test/admission, test/harnesscheck) and `make demo` (hack/demo) play scenarios with it on
// a control plane that test/harness starts.
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/test/harness"
)

// Observation is what happened when one step was played.
type Observation struct {
	Index int // 1-based step number
	Step  scenario.Step
	// Command is what was run, for messages ("calicoctl replace -f step-03.yaml").
	Command string
	// Allowed is true when the command succeeded.
	Allowed bool
	// Message is the refusal as the tool printed it (stderr without warning lines); empty
	// when allowed.
	Message string
	// Rules are the rule IDs named in Message, in order of first appearance.
	Rules []string
	// Warnings are the admission warnings the tool printed (kubectl's "Warning: …" lines,
	// client-go's logged warnings for calicoctl), without the prefix.
	Warnings []string
	// WarningRules are the rule IDs named in Warnings.
	WarningRules []string
	// Output is the raw output of the command.
	Output harness.Output
	// Before and Stored are the step's object as the API server holds it before and after
	// the step (for a projectcalico.org/v3 Node: the core/v1 Node that stores it); nil when it
	// does not exist. A refused step leaves Stored equal to Before.
	Before, Stored *unstructured.Unstructured
	// NodeLabels are the Calico label sets, after the step, of the nodes the step's After
	// names (nil for a node that does not exist).
	NodeLabels map[string]map[string]string
}

// Runner plays scenarios against a harness. A step is sent as a user sends it:
//   - a projectcalico.org/v3 Node with calicoctl (default): `calicoctl replace -f` (an UPDATE of
//     nodes/status), `calicoctl delete -f`;
//   - a projectcalico.org/v3 Node via kubectl: `kubectl patch node --type merge` with what
//     `kubectl annotate` and `kubectl label` would write (calico.NodeUpdateKubectl), a PATCH of
//     nodes; `kubectl delete node`;
//   - anything else (core Nodes, BGPPeers and BGPConfigurations of either group):
//     `kubectl apply --server-side --force-conflicts -f`, `kubectl delete -f`. Server-side, so
//     that applying an object created otherwise (a scenario's initial objects, a Node kubelet
//     registered) needs no last-applied-configuration annotation; forcing conflicts, so that a
//     field another manager (calicoctl) set is overwritten, as client-side apply does.
type Runner struct {
	H *harness.Harness
	// RuleIDs are looked for in refusals and warnings; default validate.RuleIDs(), rrguard's
	// built-in rules. IDs named by the scenario being played are always added.
	RuleIDs []string
}

// Run empties the cluster (harness.Reset), creates the scenario's initial objects directly and
// plays every step in order. Refusals are observations, not errors: an error means the
// scenario could not be played.
func (r *Runner) Run(ctx context.Context, s *scenario.Scenario) ([]Observation, error) {
	if err := r.Begin(ctx, s); err != nil {
		return nil, err
	}
	rules := r.ruleIDs(s)
	var out []Observation
	for i, st := range s.Steps {
		o, err := r.step(ctx, i+1, st, rules)
		if err != nil {
			return out, fmt.Errorf("scenario %s: step %d (%s): %w", s.Name, i+1, st.Name, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Begin empties the cluster (harness.Reset) and creates the scenario's initial objects
// directly: where Run starts, for a caller that plays the steps one by one (Step).
func (r *Runner) Begin(ctx context.Context, s *scenario.Scenario) error {
	if err := r.H.Reset(ctx); err != nil {
		return err
	}
	if err := r.H.Create(ctx, s.Initial); err != nil {
		return fmt.Errorf("scenario %s: initial objects: %w", s.Name, err)
	}
	return nil
}

func (r *Runner) ruleIDs(s *scenario.Scenario) []string {
	ids := slices.Clone(r.RuleIDs)
	if ids == nil {
		ids = validate.RuleIDs()
	}
	for _, st := range s.Steps {
		ids = append(ids, st.Deny...)
		ids = append(ids, st.Warnings...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Step plays one step on the cluster as it is.
func (r *Runner) Step(ctx context.Context, index int, st scenario.Step) (Observation, error) {
	return r.step(ctx, index, st, r.ruleIDs(&scenario.Scenario{Steps: []scenario.Step{st}}))
}

func (r *Runner) step(ctx context.Context, index int, st scenario.Step, rules []string) (Observation, error) {
	obj := st.Object
	o := Observation{Index: index, Step: st}
	raw, err := yaml.Marshal(obj.Object)
	if err != nil {
		return o, err
	}
	file := fmt.Sprintf("step-%02d-%s-%s.yaml", index, strings.ToLower(obj.GetKind()), obj.GetName())
	path, err := r.H.WriteFile(file, raw)
	if err != nil {
		return o, err
	}
	where := obj
	if st.Via == "calicoctl" && !isCalicoNode(obj) {
		where = scenario.CalicoctlStored(obj)
	}
	if o.Before, err = r.stored(ctx, where); err != nil {
		return o, err
	}
	verb := st.Do
	switch {
	case isCalicoNode(obj) && st.Via == "kubectl" && st.Do == "delete":
		o.Command = "kubectl delete node " + obj.GetName()
		o.Output = r.H.Kubectl(ctx, nil, "delete", "node", obj.GetName())
	case isCalicoNode(obj) && st.Via == "kubectl":
		patch, err := r.kubectlNodePatch(ctx, obj)
		if err != nil {
			return o, err
		}
		args := []string{"patch", "node", obj.GetName(), "--type", "merge", "-p", string(patch)}
		o.Command = "kubectl " + strings.Join(args, " ")
		o.Output = r.H.Kubectl(ctx, nil, args...)
	case isCalicoNode(obj):
		// calicoctl replace (Kubernetes datastore): read the core Node, write the BGP spec into
		// its annotations and the labels into projectcalico.org/labels, UPDATE nodes/status.
		if verb == "apply" {
			verb = "replace"
		}
		o.Command = fmt.Sprintf("calicoctl %s -f %s", verb, file)
		o.Output = r.H.Calicoctl(ctx, nil, verb, "-f", path)
	case st.Via == "calicoctl":
		// calicoctl apply/delete of a v3 object: on a Kubernetes datastore it writes the
		// crd.projectcalico.org/v1 object as the user.
		o.Command = fmt.Sprintf("calicoctl %s -f %s", verb, file)
		o.Output = r.H.Calicoctl(ctx, nil, verb, "-f", path)
	default:
		args := []string{verb}
		if verb == "apply" {
			args = append(args, "--server-side", "--force-conflicts")
		}
		args = append(args, "-f")
		o.Command = fmt.Sprintf("kubectl %s %s", strings.Join(args, " "), file)
		o.Output = r.H.Kubectl(ctx, nil, append(args, path)...)
	}
	o.Allowed = o.Output.Err == nil
	o.Warnings, o.Message = splitWarnings(o.Output.Stderr)
	if o.Allowed {
		o.Message = ""
	} else if o.Message == "" {
		o.Message = o.Output.Err.Error()
	}
	o.Rules = ruleIDsIn(o.Message, rules)
	o.WarningRules = ruleIDsIn(strings.Join(o.Warnings, "\n"), rules)

	if o.Stored, err = r.stored(ctx, where); err != nil {
		return o, err
	}
	if st.After != nil {
		o.NodeLabels = map[string]map[string]string{}
		for name := range st.After.NodeLabels {
			labels, err := r.H.NodeCalicoLabels(ctx, name)
			if err != nil && !apierrors.IsNotFound(err) {
				return o, err
			}
			o.NodeLabels[name] = labels
		}
	}
	return o, nil
}

func isCalicoNode(obj *unstructured.Unstructured) bool {
	return obj.GetAPIVersion() == "projectcalico.org/v3" && obj.GetKind() == "Node"
}

// kubectlNodePatch is the merge patch of `kubectl annotate` + `kubectl label` that writes the
// v3 Node's fields onto the core Node (calico.NodeUpdateKubectl).
func (r *Runner) kubectlNodePatch(ctx context.Context, v3node *unstructured.Unstructured) ([]byte, error) {
	current, err := r.H.Node(ctx, v3node.GetName())
	if apierrors.IsNotFound(err) {
		// kubectl will say so; the patch is what it would send.
		current, err = &corev1.Node{}, nil
	}
	if err != nil {
		return nil, err
	}
	updated, err := calico.NodeUpdateKubectl(current, v3node)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{}
	if p := mapPatch(current.Labels, updated.Labels); p != nil {
		meta["labels"] = p
	}
	if p := mapPatch(current.Annotations, updated.Annotations); p != nil {
		meta["annotations"] = p
	}
	return json.Marshal(map[string]any{"metadata": meta})
}

// mapPatch is the JSON merge patch from one string map to another (nil: no change).
func mapPatch(from, to map[string]string) map[string]any {
	p := map[string]any{}
	for k, v := range to {
		if old, ok := from[k]; !ok || old != v {
			p[k] = v
		}
	}
	for k := range from {
		if _, ok := to[k]; !ok {
			p[k] = nil
		}
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

// stored reads the step's object back; a projectcalico.org/v3 Node is read as its core Node.
func (r *Runner) stored(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	if isCalicoNode(obj) {
		got.SetAPIVersion("v1")
	}
	if err := r.H.Client.Get(ctx, client.ObjectKey{Name: obj.GetName(), Namespace: obj.GetNamespace()}, got); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read back %s %q: %w", obj.GetKind(), obj.GetName(), err)
	}
	return got, nil
}

// An admission warning as kubectl prints it: "Warning: text".
var kubectlWarning = regexp.MustCompile(`^Warning: (.*)$`)

// An admission warning as client-go's default handler logs it through klog (calicoctl), as
// client-go v0.33 does: I1126 01:02:03.456789   12345 warnings.go:110] "Warning: text"
// or as older ones do: W1126 01:02:03.456789   12345 warnings.go:70] text
var klogWarning = regexp.MustCompile(`^[IW]\d{4} [\d:.]+\s+\d+ warnings\.go:\d+\] (.*)$`)

// clientSideWarning is printed by kubectl apply itself, not by the API server.
const clientSideWarning = "annotation which is required by kubectl apply"

// splitWarnings separates the admission warnings from the rest of a tool's stderr.
func splitWarnings(stderr string) (warnings []string, rest string) {
	var other []string
	for _, line := range strings.Split(stderr, "\n") {
		text, ok := warningText(line)
		switch {
		case !ok:
			other = append(other, line)
		case !strings.Contains(text, clientSideWarning):
			warnings = append(warnings, text)
		}
	}
	return warnings, strings.TrimSpace(strings.Join(other, "\n"))
}

func warningText(line string) (string, bool) {
	if m := kubectlWarning.FindStringSubmatch(line); m != nil {
		return m[1], true
	}
	m := klogWarning.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	if quoted, err := strconv.Unquote(m[1]); err == nil {
		return strings.TrimPrefix(quoted, "Warning: "), true
	}
	return m[1], true
}

// ruleIDsIn returns the IDs that occur in text as whole words (not inside a longer
// kebab-case word), in order of first appearance.
func ruleIDsIn(text string, ids []string) []string {
	type hit struct {
		id  string
		pos int
	}
	var hits []hit
	for _, id := range ids {
		for from := 0; ; {
			i := strings.Index(text[from:], id)
			if i < 0 {
				break
			}
			i += from
			end := i + len(id)
			if (i == 0 || !wordByte(text[i-1])) && (end == len(text) || !wordByte(text[end])) {
				hits = append(hits, hit{id, i})
				break
			}
			from = end
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.pos - b.pos })
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.id)
	}
	return out
}

func wordByte(c byte) bool {
	return c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Check returns how an observation differs from what its step expects (expect, deny,
// warnings, after.nodeLabels); empty when it matches.
func Check(o Observation) []string {
	st := o.Step
	var diffs []string
	switch {
	case st.Expect == "allow" && !o.Allowed:
		diffs = append(diffs, fmt.Sprintf("want allowed, was refused: %s", o.Message))
	case st.Expect == "deny" && o.Allowed:
		diffs = append(diffs, "want denied, was allowed")
	}
	for _, id := range st.Deny {
		if !slices.Contains(o.Rules, id) {
			diffs = append(diffs, fmt.Sprintf("want rule %s among the denial causes, got %v (%q)", id, o.Rules, o.Message))
		}
	}
	for _, id := range st.Warnings {
		if !slices.Contains(o.WarningRules, id) {
			diffs = append(diffs, fmt.Sprintf("want rule %s among the warnings, got %v (%q)", id, o.WarningRules, o.Warnings))
		}
	}
	if st.After != nil {
		for _, node := range slices.Sorted(maps.Keys(st.After.NodeLabels)) {
			got, ok := o.NodeLabels[node]
			if !ok || got == nil {
				diffs = append(diffs, fmt.Sprintf("node %s: not found after the step", node))
				continue
			}
			for _, key := range slices.Sorted(maps.Keys(st.After.NodeLabels[node])) {
				want := st.After.NodeLabels[node][key]
				v, has := got[key]
				switch {
				case want == nil && has:
					diffs = append(diffs, fmt.Sprintf("node %s: want no label %s, got %q", node, key, v))
				case want != nil && !has:
					diffs = append(diffs, fmt.Sprintf("node %s: want label %s=%q, it is absent", node, key, *want))
				case want != nil && v != *want:
					diffs = append(diffs, fmt.Sprintf("node %s: want label %s=%q, got %q", node, key, *want, v))
				}
			}
		}
	}
	return diffs
}

// CoreNode converts a stored core/v1 Node (Observation.Stored) to its typed form.
func CoreNode(u *unstructured.Unstructured) (*corev1.Node, error) {
	n := &corev1.Node{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, n); err != nil {
		return nil, fmt.Errorf("decode Node %q: %w", u.GetName(), err)
	}
	return n, nil
}
