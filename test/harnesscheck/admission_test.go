//go:build e2e

package harnesscheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/pkg/calico"
)

// admissionPolicies stand in for rrguard: ValidatingAdmissionPolicies (built into the API
// server) that deny or warn with messages naming rule IDs, each matching one write path, so
// that TestRunnerObservesAdmission can show what the runner sees of a refusal or a warning
// on each path a scenario step takes.
const admissionPolicies = `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-nodes-status}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [nodes/status]}
  validations:
  - expression: "!has(object.metadata.annotations) || object.metadata.annotations[?'projectcalico.org/RouteReflectorClusterID'].orValue('') != '9.9.9.9'"
    message: "cluster-id-format: the stand-in policy on nodes/status refuses 9.9.9.9"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-nodes}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [nodes]}
  validations:
  - expression: "!has(object.metadata.annotations) || object.metadata.annotations[?'projectcalico.org/RouteReflectorClusterID'].orValue('') != '9.9.9.8'"
    message: "cluster-id-format: the stand-in policy on nodes refuses 9.9.9.8"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-nodes-warn}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [nodes, nodes/status]}
  validations:
  - expression: "!has(object.metadata.annotations) || object.metadata.annotations[?'projectcalico.org/RouteReflectorClusterID'].orValue('') != '1.0.0.1'"
    message: "reflector-without-peers: the stand-in policy warns about 1.0.0.1"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-peers}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [crd.projectcalico.org, projectcalico.org], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [bgppeers]}
  validations:
  - expression: "!object.spec.?peerSelector.orValue('').endsWith('(route-reflector')"
    message: "selector-syntax: the stand-in policy refuses an unclosed has("
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-peers-warn}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [crd.projectcalico.org, projectcalico.org], apiVersions: ["*"], operations: [CREATE, UPDATE], resources: [bgppeers]}
  validations:
  - expression: "!object.spec.?peerSelector.orValue('').contains('router-reflector')"
    message: "selector-matches-nothing: the stand-in policy asks: did you mean route-reflector?"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: harnesscheck-peers-delete}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [crd.projectcalico.org, projectcalico.org], apiVersions: ["*"], operations: [DELETE], resources: [bgppeers]}
  validations:
  - expression: "oldObject.metadata.?labels[?'harnesscheck-protected'].orValue('') != 'true'"
    message: "route-propagation: the stand-in policy refuses to delete a protected peer"
`

// admissionPolicyBindings bind each policy with the action its name says.
var admissionPolicyBindings = map[string]string{
	"harnesscheck-nodes-status": "Deny", "harnesscheck-nodes": "Deny", "harnesscheck-nodes-warn": "Warn",
	"harnesscheck-peers": "Deny", "harnesscheck-peers-warn": "Warn", "harnesscheck-peers-delete": "Deny",
}

// admissionScenario walks every write path of a scenario step past the policies above.
const admissionScenario = `
name: runner-observes-admission
initial:
  - {apiVersion: v1, kind: Node, metadata: {name: n1, labels: {kubernetes.io/hostname: n1}, annotations: {projectcalico.org/IPv4Address: 10.0.0.1/24}}, status: {conditions: [{type: Ready, status: "True"}]}}
  - {apiVersion: v1, kind: Node, metadata: {name: n2, annotations: {projectcalico.org/IPv4Address: 10.0.0.2/24}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n3, annotations: {projectcalico.org/IPv4Address: 10.0.0.3/24}}}
  - {apiVersion: v1, kind: Node, metadata: {name: n4, annotations: {projectcalico.org/IPv4Address: 10.0.0.4/24}}}
steps:
  - name: calicoctl does not write nodes (the nodes policy does not see it)
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n1}, spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 9.9.9.8}}}
    expect: allow
  - name: calicoctl writes nodes/status
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n1}, spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 9.9.9.9}}}
    expect: deny
    deny: [cluster-id-format]
  - name: kubectl annotate does not write nodes/status
    via: kubectl
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n2}, spec: {bgp: {routeReflectorClusterID: 9.9.9.9}}}
    expect: allow
  - name: kubectl annotate writes nodes
    via: kubectl
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n2}, spec: {bgp: {routeReflectorClusterID: 9.9.9.8}}}
    expect: deny
    deny: [cluster-id-format]
  - name: calicoctl prints the warnings
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n3, labels: {route-reflector: "true"}}, spec: {bgp: {ipv4Address: 10.0.0.3/24, routeReflectorClusterID: 1.0.0.1}}}
    expect: allow
    warnings: [reflector-without-peers]
    after: {nodeLabels: {n3: {route-reflector: "true", kubernetes.io/hostname: null}}}
  - name: kubectl prints the warnings
    via: kubectl
    object: {apiVersion: projectcalico.org/v3, kind: Node, metadata: {name: n4, labels: {route-reflector: "true"}}, spec: {bgp: {routeReflectorClusterID: 1.0.0.1}}}
    expect: allow
    warnings: [reflector-without-peers]
    after: {nodeLabels: {n4: {route-reflector: "true"}}}
  - name: a v1 BGPPeer is refused
    object: {apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p1}, spec: {nodeSelector: "!has(route-reflector)", peerSelector: "has(route-reflector"}}
    expect: deny
    deny: [selector-syntax]
  - name: a v3 BGPPeer is allowed with a warning
    object: {apiVersion: projectcalico.org/v3, kind: BGPPeer, metadata: {name: p1}, spec: {nodeSelector: "!has(route-reflector)", peerSelector: "has(router-reflector)"}}
    expect: allow
    warnings: [selector-matches-nothing]
  - name: a protected peer is created
    object: {apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p2, labels: {harnesscheck-protected: "true"}}, spec: {nodeSelector: "!has(route-reflector)", peerSelector: "has(route-reflector)"}}
    expect: allow
  - name: deleting it is refused
    do: delete
    object: {apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: p2}}
    expect: deny
    deny: [route-propagation]
  - name: kubectl apply of a core Node prints the admission warnings only
    object: {apiVersion: v1, kind: Node, metadata: {name: n4, labels: {team: payments}}}
    expect: allow
    warnings: [reflector-without-peers]
`

// TestRunnerObservesAdmission shows, with admission policies standing in for rrguard, that the
// runner reports refusals, the rule IDs in them and admission warnings on every write path,
// and that calicoctl replace writes nodes/status while kubectl annotate/label write nodes.
func TestRunnerObservesAdmission(t *testing.T) {
	ctx := context.Background()
	if out := h.Kubectl(ctx, []byte(admissionPolicies+bindings()), "apply", "-f", "-"); out.Err != nil {
		t.Fatalf("%v: %s", out.Err, out.Stderr)
	}
	t.Cleanup(func() {
		out := h.Kubectl(ctx, []byte(admissionPolicies+bindings()), "delete", "-f", "-")
		if out.Err != nil {
			t.Errorf("%v: %s", out.Err, out.Stderr)
		}
		if err := waitForPolicies(ctx, false); err != nil {
			t.Error(err)
		}
		if err := h.Reset(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := waitForPolicies(ctx, true); err != nil {
		t.Fatal(err)
	}

	path, err := h.WriteFile("admission-scenario.yaml", []byte(admissionScenario))
	if err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	runner := &live.Runner{H: h}
	observations, err := runner.Run(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	// Which policy refused tells which resource the tool wrote.
	wantIn := map[int]string{2: "on nodes/status refuses", 4: "on nodes refuses"}
	for _, o := range observations {
		t.Logf("step %d (%s): %s: allowed=%v rules=%v warnings=%q stderr=%q", o.Index, o.Step.Name, o.Command, o.Allowed, o.Rules, o.Warnings, o.Output.Stderr)
		for _, d := range live.Check(o) {
			t.Errorf("step %d (%s): %s", o.Index, o.Step.Name, d)
		}
		if !o.Allowed {
			checkUnchanged(t, o)
		}
		if want := wantIn[o.Index]; want != "" && !strings.Contains(o.Message, want) {
			t.Errorf("step %d (%s): refusal %q does not contain %q", o.Index, o.Step.Name, o.Message, want)
		}
		if len(o.Warnings) != len(o.Step.Warnings) {
			t.Errorf("step %d (%s): warnings %q, want exactly %d", o.Index, o.Step.Name, o.Warnings, len(o.Step.Warnings))
		}
	}
	// calicoctl wrote n3's annotations through nodes/status, as its field manager shows.
	n3, err := h.Node(ctx, "n3")
	if err != nil {
		t.Fatal(err)
	}
	if n3.Annotations[calico.AnnotationClusterID] != "1.0.0.1" || !writtenBy(n3, "calicoctl", "status") {
		t.Errorf("n3: want cluster ID 1.0.0.1 written by calicoctl on nodes/status, got %v %+v", n3.Annotations, n3.ManagedFields)
	}
}

func bindings() string {
	var b strings.Builder
	for name, action := range admissionPolicyBindings {
		fmt.Fprintf(&b, "---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\n"+
			"metadata: {name: %s}\nspec: {policyName: %s, validationActions: [%s]}\n", name, name, action)
	}
	return b.String()
}

// writtenBy reports whether manager wrote the node through the given subresource.
func writtenBy(n *corev1.Node, manager, subresource string) bool {
	for _, e := range n.ManagedFields {
		if e.Manager == manager && e.Subresource == subresource {
			return true
		}
	}
	return false
}

// warningRecorder collects the warnings the API server returns.
type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.messages
	w.messages = nil
	return m
}

// waitForPolicies waits until every policy of admissionPolicies acts (or, with active false,
// none does): the API server loads policies asynchronously. It probes each with dry-run
// requests on objects of its own, which it deletes again.
func waitForPolicies(ctx context.Context, active bool) error {
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(h.Config)
	cfg.WarningHandler = warnings
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	node := &corev1.Node{}
	node.Name = "harnesscheck-policy-probe"
	peer := bgpPeer("harnesscheck-policy-probe", "has(route-reflector)")
	peer.SetLabels(map[string]string{"harnesscheck-protected": "true"})
	if err := c.Create(ctx, node); err != nil {
		return err
	}
	if err := c.Create(ctx, peer); err != nil {
		return err
	}
	defer func() {
		_ = c.Delete(ctx, node)
		peer.SetLabels(nil)
		_ = c.Update(ctx, peer)
		_ = c.Delete(ctx, peer)
	}()

	withClusterID := func(id string) *corev1.Node {
		n := node.DeepCopy()
		n.Annotations = map[string]string{calico.AnnotationClusterID: id}
		return n
	}
	// A probe makes a dry-run request that its policy refuses or warns about, and reports
	// whether the policy (named in the refusal or warning) acted.
	probes := map[string]func() error{
		"harnesscheck-nodes-status": func() error { return c.Status().Update(ctx, withClusterID("9.9.9.9"), client.DryRunAll) },
		"harnesscheck-nodes":        func() error { return c.Update(ctx, withClusterID("9.9.9.8"), client.DryRunAll) },
		"harnesscheck-nodes-warn":   func() error { return c.Update(ctx, withClusterID("1.0.0.1"), client.DryRunAll) },
		"harnesscheck-peers": func() error {
			return c.Create(ctx, bgpPeer("harnesscheck-policy-probe-2", "has(route-reflector"), client.DryRunAll)
		},
		"harnesscheck-peers-warn": func() error {
			return c.Create(ctx, bgpPeer("harnesscheck-policy-probe-2", "has(router-reflector)"), client.DryRunAll)
		},
		"harnesscheck-peers-delete": func() error { return c.Delete(ctx, peer.DeepCopy(), client.DryRunAll) },
	}
	deadline := time.Now().Add(30 * time.Second)
	for name, probe := range probes {
		for {
			warnings.take()
			err := probe()
			said := strings.Join(warnings.take(), "\n")
			if err != nil {
				said = err.Error()
			}
			acted := strings.Contains(said, "'"+name+"'")
			if err != nil && !acted {
				return fmt.Errorf("probe policy %s: %w", name, err)
			}
			if acted == active {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("policy " + name + map[bool]string{true: " does not act", false: " still acts"}[active])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func bgpPeer(name, peerSelector string) *unstructured.Unstructured {
	var obj map[string]any
	_ = yaml.Unmarshal([]byte(fmt.Sprintf(`{apiVersion: crd.projectcalico.org/v1, kind: BGPPeer, metadata: {name: %q}, spec: {peerSelector: %q}}`, name, peerSelector)), &obj)
	return &unstructured.Unstructured{Object: obj}
}
