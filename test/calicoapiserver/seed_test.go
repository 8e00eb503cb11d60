//go:build e2e

package calicoapiserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/pkg/validate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// stories are the scenarios of test/scenarios played here: the seed migration and what else
// decides routes (BGPFilters, IPPools).
var stories = []string{"seed-tutorial.yaml", "filters-and-pools.yaml"}

const (
	groupV1 = "crd.projectcalico.org"
	groupV3 = "projectcalico.org"
	admin   = "admin" // envtest's system:masters user, kubectl's and calicoctl's here
)

// played is a step as the cluster answered it, with the reviews rrguard got meanwhile.
type played struct {
	live.Observation
	Reviews judgements
	// Status is what a client is answered for the step's refused Calico object written with
	// kubectl, as a dry run just before: the message and the causes with their field paths
	// that kubectl does not print.
	Status *metav1.Status
}

// play runs a scenario step by step, recording rrguard's reviews of each step.
func play(t *testing.T, sc *scenario.Scenario) []played {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	r := &live.Runner{H: h}
	if err := r.Begin(ctx, sc); err != nil {
		t.Fatal(err)
	}
	var out []played
	for i, st := range sc.Steps {
		var status *metav1.Status
		if st.Expect == "deny" && isCalicoObject(st.Object) && st.Via == "" {
			var err error
			if status, err = userStatus(ctx, st.Object, st.Do); err != nil {
				t.Fatalf("scenario %s: step %d (%s) as a dry run: %v", sc.Name, i+1, st.Name, err)
			}
		}
		mark := rec.mark()
		o, err := r.Step(ctx, i+1, st)
		if err != nil {
			t.Fatalf("scenario %s: step %d (%s): %v", sc.Name, i+1, st.Name, err)
		}
		out = append(out, played{Observation: o, Reviews: rec.since(mark), Status: status})
	}
	return out
}

// loadStory reads one of test/scenarios.
func loadStory(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Load(filepath.Join(h.RootDir, "test", "scenarios", name))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// isCalicoObject is true for the Calico objects that are not Nodes (a Calico Node is a core
// Node, which calico-apiserver does not serve).
func isCalicoObject(o *unstructured.Unstructured) bool {
	g := o.GroupVersionKind().Group
	return (g == groupV1 || g == groupV3) && o.GetKind() != "Node"
}

// rewrite returns a scenario with every Calico object in one group (crd.projectcalico.org/v1
// or projectcalico.org/v3) and each step's written with via: kubectl ("") or calicoctl (which
// reads projectcalico.org/v3 only). The initial objects are created directly in that group.
// Nodes keep their way. Comparing two rewrites of a story compares the paths, not the tools.
func rewrite(sc *scenario.Scenario, group, via string) *scenario.Scenario {
	apiVersion := map[string]string{groupV1: groupV1 + "/v1", groupV3: groupV3 + "/v3"}[group]
	out := *sc
	out.Name = fmt.Sprintf("%s (%s via %s)", sc.Name, apiVersion, toolOf(via))
	out.Initial = nil
	for _, o := range sc.Initial {
		o = o.DeepCopy()
		if isCalicoObject(o) {
			o.SetAPIVersion(apiVersion)
		}
		out.Initial = append(out.Initial, o)
	}
	out.Steps = nil
	for _, st := range sc.Steps {
		st.Object = st.Object.DeepCopy()
		if isCalicoObject(st.Object) {
			st.Object.SetAPIVersion(apiVersion)
			st.Via = via
		}
		out.Steps = append(out.Steps, st)
	}
	return &out
}

func toolOf(via string) string {
	if via == "" {
		return "kubectl"
	}
	return via
}

// TestSeedStory plays the seed migration and the filters-and-pools story three ways and
// compares each step with the first, the CRD path (every Calico object written with kubectl
// as crd.projectcalico.org/v1, through kube-apiserver alone, as test/admission plays it):
//   - calico-apiserver: every Calico object written with kubectl as projectcalico.org/v3,
//     through calico-apiserver: the same verdict, rule IDs, refusal text, API status (causes
//     and field paths) and warnings, rrguard asked once about the v3 object and, when that
//     was allowed, once about calico-apiserver's crd.projectcalico.org/v1 write, allowed too;
//   - calicoctl: every Calico object written by calicoctl, which beside calico-apiserver still
//     writes crd.projectcalico.org/v1 itself, as the user: the same findings, as calicoctl
//     words a refusal (the status's message, where kubectl prints its causes).
func TestSeedStory(t *testing.T) {
	for _, name := range stories {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			sc := loadStory(t, name)
			crd := play(t, rewrite(sc, groupV1, ""))
			t.Run("calico-apiserver", func(t *testing.T) {
				report(t, crd, play(t, rewrite(sc, groupV3, "")), checkThroughCalicoAPIServer, sameText)
			})
			t.Run("calicoctl", func(t *testing.T) {
				report(t, crd, play(t, rewrite(sc, groupV3, "calicoctl")), checkThroughCalicoctl, sameSentences)
			})
		})
	}
}

// calicoRefuses are the steps libcalico-go's own validation refuses, with what it says, by
// the tool they are written with. calicoctl validates before it writes, so rrguard is not
// asked: it parses selectors, and it looks a BGPPeer's filters up. calico-apiserver validates
// in its storage, after its admission chain: rrguard was asked about the projectcalico.org/v3
// object and answered as on the CRDs (a filter that does not exist: allowed, with its
// warning, which kubectl shows beside Calico's refusal), and no crd.projectcalico.org/v1
// object is written.
var calicoRefuses = map[string]map[string]string{
	"calicoctl": {
		"a selector that does not parse is refused":                            "failed to validate Field: PeerSelector",
		"a peer naming a filter that does not exist is allowed with a warning": "BGPFilter(s) not found",
	},
	"kubectl": {
		"a peer naming a filter that does not exist is allowed with a warning": "BGPFilter(s) not found",
	},
}

// poolDeletion is libcalico-go's delete of an IPPool, calicoctl's and calico-apiserver's:
// rrguard is not asked about it whole. libcalico-go first writes the pool with spec.disabled
// (a crd.projectcalico.org/v1 UPDATE rrguard judges: the nodes keep their blocks, which the
// pool still covers: allowed), then releases the affinities of the pool's blocks (BlockAffinity
// writes rrguard reads and does not judge), then deletes the pool (a crd.projectcalico.org/v1
// DELETE rrguard judges: a disabled pool whose blocks no node holds any more: allowed). The
// CRD path's refusal, for the blocks nodes would keep in no pool, does not happen: what the
// story's step asserts holds only for kubectl on crd.projectcalico.org/v1. (rrguard does not
// read IPAMBlocks, where the addresses of the released blocks stay allocated.)
const poolDeletion = "deleting the only pool is refused (its blocks would be in no pool)"

// report checks each step of a variant against its expectation and against the CRD path,
// then the reviews rrguard got with check, and logs the tally.
func report(t *testing.T, crd, variant []played, check func(played) []string, text func(crd, v string) string) {
	t.Helper()
	notAsExpected := 0
	for i, v := range variant {
		var diffs []string
		tool := toolOf(v.Step.Via)
		says, refused := calicoRefuses[tool][v.Step.Name]
		switch {
		case refused:
			diffs = append(diffs, calicoRefusal(crd[i], v, says)...)
		case v.Step.Name == poolDeletion:
			diffs = append(diffs, libcalicoPoolDeletion(v)...)
		default:
			diffs = append(diffs, live.Check(v.Observation)...)
			diffs = append(diffs, sameAnswer(crd[i], v, text)...)
			diffs = append(diffs, check(v)...)
		}
		for _, d := range diffs {
			t.Errorf("step %d %q (%s): %s", v.Index, v.Step.Name, v.Command, d)
		}
		if len(diffs) > 0 {
			notAsExpected++
		}
		t.Logf("step %d %q: %s -> allowed=%v rules=%v warnings=%v; rrguard asked: %s", v.Index, v.Step.Name, v.Command, v.Allowed, v.Rules, v.WarningRules, v.Reviews.validating())
	}
	t.Logf("%d steps, %d not as expected", len(variant), notAsExpected)
}

// calicoRefusal checks a step libcalico-go refuses itself (calicoRefuses): its refusal, and
// rrguard's part, which depends on where libcalico-go validates.
func calicoRefusal(crd, v played, says string) []string {
	var diffs []string
	if v.Allowed || !strings.Contains(v.Message, says) {
		diffs = append(diffs, fmt.Sprintf("want Calico's own refusal (%q), got allowed=%v %q", says, v.Allowed, v.Message))
	}
	res := resourceOf(v.Step.Object)
	v1 := v.Reviews.of("/validate", groupV1, res)
	if v.Step.Via == "calicoctl" {
		if len(v.Reviews) > 0 {
			diffs = append(diffs, fmt.Sprintf("calicoctl refuses before it writes, yet rrguard was asked: %s", v.Reviews))
		}
		return diffs
	}
	v3 := v.Reviews.of("/validate", groupV3, res)
	if len(v3) != 1 || v3[0].User != admin || v3[0].Allowed != crd.Allowed {
		diffs = append(diffs, fmt.Sprintf("want one review of the projectcalico.org/v3 write by %s (allowed=%v, as on the CRDs), got %s", admin, crd.Allowed, v3))
	}
	if len(v1) > 0 {
		diffs = append(diffs, fmt.Sprintf("refused by Calico, yet crd.projectcalico.org/v1 was written: %s", v1))
	}
	if !sameSet(crd.WarningRules, v.WarningRules) {
		diffs = append(diffs, fmt.Sprintf("warnings name %v, on the CRDs %v", v.WarningRules, crd.WarningRules))
	}
	return diffs
}

// libcalicoPoolDeletion checks an IPPool deleted as libcalico-go does it (poolDeletion):
// allowed, rrguard asked about the UPDATE that disables the pool and then the DELETE, both of
// crd.projectcalico.org/v1, by calico-apiserver's service account or by calicoctl's user,
// and never about projectcalico.org/v3 (calico-apiserver judges no delete).
func libcalicoPoolDeletion(v played) []string {
	writer := h.CalicoAPIServer.ServiceAccount
	if v.Step.Via == "calicoctl" {
		writer = admin
	}
	got := v.Reviews.validating()
	ok := v.Allowed && len(got) == 2
	for i, op := range []string{"UPDATE", "DELETE"} {
		ok = ok && got[i].Group == groupV1 && got[i].Resource == "ippools" && got[i].Operation == op && got[i].User == writer && got[i].Allowed
	}
	if !ok {
		return []string{fmt.Sprintf("want libcalico-go's deletion: allowed, rrguard asked about an UPDATE and a DELETE of crd.projectcalico.org/v1 by %s, both allowed; got allowed=%v %q, rrguard asked: %s", writer, v.Allowed, v.Message, got)}
	}
	return nil
}

// sameAnswer compares what the user saw at a step of a variant with the same step on the
// CRD path: the verdict, the rule IDs of the refusal and of the warnings, the texts (text
// says how they differ, "" if not) and, for kubectl, the API status.
func sameAnswer(crd, v played, text func(crd, v string) string) []string {
	var diffs []string
	if crd.Allowed != v.Allowed {
		diffs = append(diffs, fmt.Sprintf("allowed=%v, on the CRDs allowed=%v", v.Allowed, crd.Allowed))
	}
	if !sameSet(crd.Rules, v.Rules) {
		diffs = append(diffs, fmt.Sprintf("refusal names %v, on the CRDs %v", v.Rules, crd.Rules))
	}
	if !sameSet(crd.WarningRules, v.WarningRules) {
		diffs = append(diffs, fmt.Sprintf("warnings name %v, on the CRDs %v", v.WarningRules, crd.WarningRules))
	}
	if d := text(crd.Message, v.Message); d != "" {
		diffs = append(diffs, "refusal: "+d)
	}
	if d := text(strings.Join(crd.Warnings, "\n"), strings.Join(v.Warnings, "\n")); d != "" {
		diffs = append(diffs, "warnings: "+d)
	}
	switch {
	case crd.Status == nil || v.Step.Via != "":
	case v.Status == nil:
		diffs = append(diffs, "accepted as a dry run, refused on the CRDs")
	default:
		diffs = append(diffs, sameStatus(crd.Status, v.Status)...)
	}
	return diffs
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// sameText: two texts as kubectl prints them are the same from rrguard's webhook name on,
// Calico's two groups written alike ("Error from server (Forbidden): error when creating
// "step-01.yaml": " depends on the tool and the file).
func sameText(crd, v string) string {
	a, b := afterWebhookName(crd), afterWebhookName(v)
	if a == b {
		return ""
	}
	return fmt.Sprintf("\n  %q\non the CRDs\n  %q", b, a)
}

func afterWebhookName(msg string) string {
	if i := strings.Index(msg, "admission webhook "); i >= 0 {
		msg = msg[i:]
	}
	return sameGroup(msg)
}

// sameSentences: two texts name the same rrguard findings, each "[rule-id] sentence", with
// the same sentences, however the tool arranges them.
func sameSentences(crd, v string) string {
	a, b := sentences(crd), sentences(v)
	if slices.Equal(a, b) {
		return ""
	}
	return fmt.Sprintf("\n  %q\non the CRDs\n  %q", b, a)
}

// finding starts a finding in a text: its rule ID in brackets.
var finding = regexp.MustCompile(`\[(` + strings.Join(validate.RuleIDs(), "|") + `)\] `)

// Between two findings: rrguard's "; " in a status message, kubectl's "\n* field: " before
// each cause, calicoctl's "]" closing its list of errors at the end.
var between = regexp.MustCompile(`(; |\n\* [^\n]*: |\]|\s)+$`)

// sentences are the findings of a text, sorted, with Calico's two groups written alike.
func sentences(msg string) []string {
	var out []string
	at := finding.FindAllStringIndex(msg, -1)
	for i, m := range at {
		end := len(msg)
		if i+1 < len(at) {
			end = at[i+1][0]
		}
		out = append(out, sameGroup(between.ReplaceAllString(msg[m[0]:end], "")))
	}
	slices.Sort(out)
	return out
}

func sameGroup(s string) string {
	s = strings.ReplaceAll(s, groupV1+"/v1", groupV3+"/v3")
	return strings.ReplaceAll(s, groupV1, groupV3)
}

// validating are the reviews of rrguard's validating webhook.
func (js judgements) validating() judgements {
	var out judgements
	for _, j := range js {
		if j.Path == "/validate" {
			out = append(out, j)
		}
	}
	return out
}

// checkThroughCalicoAPIServer checks who asked rrguard at a step. A Calico object written:
// calico-apiserver once about the projectcalico.org/v3 object (for the user), then, when that
// was allowed, kube-apiserver once about calico-apiserver's crd.projectcalico.org/v1 write (as
// its service account), allowed too. A Calico object deleted: only kube-apiserver, about
// calico-apiserver's crd.projectcalico.org/v1 delete: calico-apiserver's storage never calls
// the validating admission of a delete (resourceStore.Delete drops validateDeletion), so
// rrguard's crd.projectcalico.org rule is all that judges it. A Node: kube-apiserver only.
func checkThroughCalicoAPIServer(p played) []string {
	obj := p.Step.Object
	if !isCalicoObject(obj) {
		return onlyCore(p)
	}
	var diffs []string
	res := resourceOf(obj)
	v3 := p.Reviews.of("/validate", groupV3, res)
	v1 := p.Reviews.of("/validate", groupV1, res)
	sa := h.CalicoAPIServer.ServiceAccount
	if p.Step.Do == "delete" {
		if len(v3) != 0 {
			diffs = append(diffs, fmt.Sprintf("calico-apiserver asked rrguard about a delete: %s", v3))
		}
		if len(v1) != 1 || v1[0].User != sa || v1[0].Operation != "DELETE" || v1[0].Allowed != p.Allowed {
			diffs = append(diffs, fmt.Sprintf("want one review of calico-apiserver's crd.projectcalico.org/v1 delete by %s (allowed=%v), got %s", sa, p.Allowed, v1))
		}
		return diffs
	}
	if len(v3) != 1 || v3[0].User != admin || v3[0].Allowed != p.Allowed {
		diffs = append(diffs, fmt.Sprintf("want one review of the projectcalico.org/v3 write by %s (allowed=%v), got %s", admin, p.Allowed, v3))
	}
	switch {
	case !p.Allowed && len(v1) > 0:
		diffs = append(diffs, fmt.Sprintf("refused, yet crd.projectcalico.org/v1 was written: %s", v1))
	case p.Allowed && (len(v1) != 1 || v1[0].User != sa || !v1[0].Allowed):
		diffs = append(diffs, fmt.Sprintf("want one allowed review of calico-apiserver's crd.projectcalico.org/v1 write by %s, got %s", sa, v1))
	case p.Allowed && len(v1[0].Warnings) > 0:
		// The write is judged against the model with the projectcalico.org/v3 change laid
		// over it: it introduces nothing, and what the user was warned of is not said again.
		diffs = append(diffs, fmt.Sprintf("calico-apiserver's crd.projectcalico.org/v1 write warned again: %q", v1[0].Warnings))
	}
	return diffs
}

// checkThroughCalicoctl checks that calicoctl's writes reach rrguard only as
// crd.projectcalico.org/v1 writes of the user, never through calico-apiserver.
func checkThroughCalicoctl(p played) []string {
	obj := p.Step.Object
	if !isCalicoObject(obj) {
		return onlyCore(p)
	}
	var diffs []string
	res := resourceOf(obj)
	if v3 := p.Reviews.of("/validate", groupV3, res); len(v3) > 0 {
		diffs = append(diffs, fmt.Sprintf("calicoctl went through calico-apiserver: %s", v3))
	}
	v1 := p.Reviews.of("/validate", groupV1, res)
	if len(v1) == 0 {
		diffs = append(diffs, "rrguard was not asked about calicoctl's crd.projectcalico.org/v1 write")
	}
	for _, j := range v1 {
		if j.User != admin {
			diffs = append(diffs, fmt.Sprintf("a crd.projectcalico.org/v1 write not by the user: %s", j))
		}
	}
	return diffs
}

// onlyCore checks that a Node step reached rrguard as a core Node write only.
func onlyCore(p played) []string {
	for _, j := range p.Reviews {
		if j.Group != "" {
			return []string{fmt.Sprintf("a Node step sent rrguard %s", j)}
		}
	}
	if len(p.Reviews.validating()) == 0 {
		return []string{"rrguard was not asked about the Node"}
	}
	return nil
}

// resourceOf is the plural resource of a Calico object.
func resourceOf(o *unstructured.Unstructured) string {
	return strings.ToLower(o.GetKind()) + "s"
}

// userStatus is the API status a client gets for writing obj (server-side apply, as kubectl
// apply --server-side --force-conflicts; or delete) as a dry run: nil when it is accepted.
func userStatus(ctx context.Context, obj *unstructured.Unstructured, do string) (*metav1.Status, error) {
	var err error
	if do == "delete" {
		err = h.Client.Delete(ctx, obj.DeepCopy(), client.DryRunAll)
	} else {
		err = h.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), client.FieldOwner("kubectl"), client.ForceOwnership, client.DryRunAll)
	}
	if err == nil {
		return nil, nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return nil, err
	}
	s := status.Status()
	return &s, nil
}

// sameStatus compares the status a refusal reaches the user with through calico-apiserver
// with the one on the CRDs: code, reason, message and each cause (field path, message).
func sameStatus(crd, v3 *metav1.Status) []string {
	var diffs []string
	if crd.Code != v3.Code || crd.Reason != v3.Reason {
		diffs = append(diffs, fmt.Sprintf("HTTP %d %s, on the CRDs %d %s", v3.Code, v3.Reason, crd.Code, crd.Reason))
	}
	if a, b := sameGroup(crd.Message), sameGroup(v3.Message); a != b {
		diffs = append(diffs, fmt.Sprintf("status message\n  %q\non the CRDs\n  %q", b, a))
	}
	var crdCauses, v3Causes []metav1.StatusCause
	if crd.Details != nil {
		crdCauses = causes(crd.Details.Causes)
	}
	if v3.Details != nil {
		v3Causes = causes(v3.Details.Causes)
	}
	if !reflect.DeepEqual(crdCauses, v3Causes) {
		diffs = append(diffs, fmt.Sprintf("causes %+v, on the CRDs %+v", v3Causes, crdCauses))
	}
	return diffs
}

func causes(cs []metav1.StatusCause) []metav1.StatusCause {
	out := slices.Clone(cs)
	for i := range out {
		out[i].Message = sameGroup(out[i].Message)
	}
	return out
}
