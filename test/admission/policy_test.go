//go:build e2e

package admission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metric returns the value of a counter or gauge of rrguard's metrics with the given labels.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// writePolicy replaces a file of the webhook's policy directory at once, as a ConfigMap
// update does (a half-written file is never read: names starting with a dot are skipped).
func writePolicy(t *testing.T, name, src string) {
	t.Helper()
	tmp := filepath.Join(policyDir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(policyDir, name)); err != nil {
		t.Fatal(err)
	}
}

// waitReload waits until the webhook has made a reload attempt with the given result since
// the count was before.
func waitReload(t *testing.T, result string, before float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, "rrguard_policy_reloads_total", map[string]string{"result": result}) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no policy reload with result %s within 30s", result)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const livePolicy = `package rrguard.policies["live-probe"]

import rego.v1

deny contains {"msg": sprintf("BGPPeer %s is refused by the live test policy (user %s, dryRun %v)", [input.object.metadata.name, input.userInfo.username, input.dryRun]), "field": "metadata.name"} if {
	input.kind == "BGPPeer"
	input.object.metadata.name == "policy-probe"
}
`

// TestPolicyHotReload: a policy written into the webhook's --policy-dir while it runs decides
// the very next request once it is loaded; a broken policy written over it is refused (logged,
// counted) and the old one stays in force; removing the file lifts it.
func TestPolicyHotReload(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	probe := "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: policy-probe}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(route-reflector)\"}\n"
	try := func() (string, bool) { return h.KubectlText(probe, "create", "--dry-run=server", "-f", "-") }
	if out, ok := try(); !ok {
		t.Fatalf("without the policy the peer is refused: %s", out)
	}
	defer func() {
		_ = os.Remove(filepath.Join(policyDir, "live.rego"))
	}()

	// A policy added while the webhook runs.
	ok0 := metric(t, "rrguard_policy_reloads_total", map[string]string{"result": "success"})
	writePolicy(t, "live.rego", livePolicy)
	waitReload(t, "success", ok0)
	out, ok := try()
	if ok || !strings.Contains(out, "[live-probe] BGPPeer policy-probe is refused by the live test policy") || !strings.Contains(out, "dryRun true") {
		t.Fatalf("the new policy did not decide the next request: ok=%v %s", ok, out)
	}

	// A broken policy written over it: not taken, the old one stays in force.
	err0 := metric(t, "rrguard_policy_reloads_total", map[string]string{"result": "error"})
	writePolicy(t, "live.rego", strings.Replace(livePolicy, "deny contains", "deny contains if {", 1))
	waitReload(t, "error", err0)
	if v := metric(t, "rrguard_policy_load_ok", nil); v != 0 {
		t.Errorf("rrguard_policy_load_ok = %v after a broken policy, want 0", v)
	}
	if out, ok := try(); ok || !strings.Contains(out, "[live-probe]") {
		t.Errorf("after a broken update the last good policy is not in force: ok=%v %s", ok, out)
	}

	// Removing it lifts it.
	ok1 := metric(t, "rrguard_policy_reloads_total", map[string]string{"result": "success"})
	if err := os.Remove(filepath.Join(policyDir, "live.rego")); err != nil {
		t.Fatal(err)
	}
	waitReload(t, "success", ok1)
	if out, ok := try(); !ok {
		t.Errorf("the removed policy still refuses: %s", out)
	}
	if v := metric(t, "rrguard_policy_load_ok", nil); v != 1 {
		t.Errorf("rrguard_policy_load_ok = %v, want 1", v)
	}
}
