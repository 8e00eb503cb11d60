package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/policy/policytest"
)

// peerNamePolicy refuses BGPPeers whose name does not end in -peer.
const peerNamePolicy = `# METADATA
# title: Peer naming
package rrguard.policies["peer-naming"]

import rego.v1

deny contains {"msg": sprintf("BGPPeer %s: name BGPPeers <what>-peer", [input.object.metadata.name]), "field": "metadata.name"} if {
	input.kind == "BGPPeer"
	not endswith(input.object.metadata.name, "-peer")
}
`

const peerNameTest = `package rrguard.policies["peer-naming"]

import rego.v1

test_good_name if count(deny) == 0 with input as {"kind": "BGPPeer", "object": {"metadata": {"name": "rr-peer"}}}

test_bad_name if count(deny) == 1 with input as {"kind": "BGPPeer", "object": {"metadata": {"name": "rr"}}}
`

func TestValidateWithPolicies(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy})
	code, out, errOut := runCLI(t, "", "validate", "-f", seedDir, "--policy-dir", dir, "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (node-peer-to-rr is misnamed)\n%s%s", code, out, errOut)
	}
	var doc struct {
		Findings []map[string]string `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range doc.Findings {
		if f["rule"] != "peer-naming" || f["action"] != "deny" || f["field"] != "metadata.name" {
			t.Errorf("finding %v", f)
		}
		names = append(names, f["name"])
	}
	if strings.Join(names, ",") != "node-peer-to-rr" {
		t.Errorf("findings on %v, want node-peer-to-rr (rr-to-rr-peer is well named)", names)
	}
	// rrguard.yaml sets a policy's action like a built-in rule's.
	cfg := policytest.Dir(t, map[string]string{"rrguard.yaml": "rules: {peer-naming: warn}\n"})
	if code, out, errOut := runCLI(t, "", "validate", "-f", seedDir, "--policy-dir", dir, "--config", filepath.Join(cfg, "rrguard.yaml")); code != 0 || !strings.Contains(out, "WARN") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestValidateShippedPolicyOn(t *testing.T) {
	cfg := policytest.Dir(t, map[string]string{"rrguard.yaml": "rules: {private-asn: deny}\n"})
	code, out, errOut := runCLI(t, "", "validate", "-f", seedDir, "--config", filepath.Join(cfg, "rrguard.yaml"))
	if code != 1 || !strings.Contains(out, "private-asn") || !strings.Contains(out, "63400") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestPolicyLoadErrors(t *testing.T) {
	broken := policytest.Dir(t, map[string]string{"naming.rego": "package rrguard.policies.x\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := http.send({\"method\": \"get\", \"url\": \"http://x\"})\n}\n"})
	review := policytest.Dir(t, map[string]string{"r.json": "{}"})
	for name, args := range map[string][]string{
		"validate": {"validate", "-f", seedDir, "--policy-dir", broken},
		"review":   {"review", "--state", seedDir, "-f", filepath.Join(review, "r.json"), "--policy-dir", broken},
		"test":     {"policy", "test", broken},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", args...)
			if code != 2 || !strings.Contains(errOut, "naming.rego:6: http.send is not allowed") {
				t.Errorf("exit %d\n%s%s", code, out, errOut)
			}
		})
	}
	if code, _, errOut := runCLI(t, "", "validate", "-f", seedDir, "--policy-dir", filepath.Join(broken, "nope")); code != 2 || !strings.Contains(errOut, "nope") {
		t.Errorf("missing directory: exit %d %s", code, errOut)
	}
}

func TestReviewWithPolicies(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy})
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3","kind":{"group":"crd.projectcalico.org","version":"v1","kind":"BGPPeer"},
"resource":{"group":"crd.projectcalico.org","version":"v1","resource":"bgppeers"},"name":"extra","operation":"CREATE","userInfo":{"username":"alice"},
"object":{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPPeer","metadata":{"name":"extra"},"spec":{"nodeSelector":"has(route-reflector)","peerSelector":"has(route-reflector)"}}}}`
	code, out, errOut := runCLI(t, review, "review", "--state", seedDir, "--policy-dir", dir)
	if code != 1 || !strings.Contains(out, "[peer-naming] BGPPeer extra: name BGPPeers") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestPolicyTest(t *testing.T) {
	if code, out, errOut := runCLI(t, "", "policy", "test", policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy, "naming_test.rego": peerNameTest})); code != 0 || !strings.Contains(out, "PASS: 2/2") {
		t.Errorf("passing tests: exit %d\n%s%s", code, out, errOut)
	}
	failing := strings.Replace(peerNameTest, `count(deny) == 1`, `count(deny) == 2`, 1)
	if code, out, errOut := runCLI(t, "", "policy", "test", policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy, "naming_test.rego": failing})); code != 1 || !strings.Contains(out, "test_bad_name") || !strings.Contains(out, "FAIL: 1/2") {
		t.Errorf("failing test: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "", "policy", "test", policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy})); code != 1 || !strings.Contains(errOut, "no tests") {
		t.Errorf("no tests: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "", "policy", "test"); code != 0 || !strings.Contains(out, "PASS") {
		t.Errorf("shipped: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "", "policy", "test", "../../policies"); code != 0 {
		t.Errorf("policies/: exit %d\n%s%s", code, out, errOut)
	}
}

func TestRulesListsPolicies(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"naming.rego": peerNamePolicy})
	code, out, errOut := runCLI(t, "", "rules", "--policy-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	for _, want := range []string{"route-propagation", "private-asn", "off", "peer-naming", "deny", "Peer naming"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules output lacks %q:\n%s", want, out)
		}
	}
}
