package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

const seedDir = "../../examples/seed"

// copySeed copies the seed manifests into a temporary directory and applies edits (file → old → new).
func copySeed(t *testing.T, edits map[string][2]string) string {
	return validatetest.CopyWith(t, seedDir, edits)
}

func TestValidateSeedIsClean(t *testing.T) {
	code, out, errOut := runCLI(t, "", "validate", "-f", seedDir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "No findings") {
		t.Errorf("output: %s", out)
	}
}

func TestValidateTypo(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"peer.yaml": {`peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`}})
	code, out, _ := runCLI(t, "", "validate", "-f", dir, "-o", "json")
	if code != 1 {
		t.Errorf("exit %d, want 1 (the clients lose their routes)", code)
	}
	var doc struct {
		Findings []map[string]string `json:"findings"`
		Summary  map[string]int      `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	found := false
	for _, f := range doc.Findings {
		for _, k := range []string{"rule", "action", "kind", "name", "message"} {
			if f[k] == "" {
				t.Errorf("finding without %s: %v", k, f)
			}
		}
		if f["rule"] == "selector-matches-nothing" && f["name"] == "node-peer-to-rr" && f["field"] == "spec.peerSelector" &&
			strings.Contains(f["message"], `did you mean label "route-reflector"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no selector-matches-nothing finding with a did-you-mean:\n%s", out)
	}
	if doc.Summary["deny"] == 0 || doc.Summary["total"] != len(doc.Findings) {
		t.Errorf("summary %v", doc.Summary)
	}
}

func TestValidateFormats(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"rxgks.yaml": {"routeReflectorClusterID: 1.0.0.1", "routeReflectorClusterID: 300.34.3.1"}})
	for format, want := range map[string]string{
		"table": "cluster-id-format",
		"junit": `<testcase name="cluster-id-format" classname="rrguard">`,
		"sarif": `"ruleId": "cluster-id-format"`,
	} {
		code, out, _ := runCLI(t, "", "validate", "-f", dir, "-o", format)
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("-o %s: exit %d, output lacks %q:\n%s", format, code, want, out)
		}
	}
}

func TestValidateBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := write("big.yaml", "# "+strings.Repeat("x", 17<<20))
	cases := map[string]struct {
		args []string
		want []string
	}{
		"no input":       {[]string{"validate"}, []string{"-f"}},
		"missing file":   {[]string{"validate", "-f", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		"malformed yaml": {[]string{"validate", "-f", write("bad.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: a\n")}, []string{"bad.yaml#1", "YAML"}},
		"asn 1.1.1": {[]string{"validate", "-f", write("asn.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: \"1.1.1\"}\n")},
			[]string{"asn.yaml#2", "default", "spec.asNumber", "1.1.1"}},
		"wrong type": {[]string{"validate", "-f", write("type.yaml", "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec: {nodeSelector: [a, b]}\n")},
			[]string{"type.yaml#1", "BGPPeer", "p"}},
		"yaml tag trap": {[]string{"validate", "-f", write("tag.yaml", "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec:\n  nodeSelector: !has(route-reflector)\n  peerSelector: has(route-reflector)\n")},
			[]string{"tag.yaml#1", "nodeSelector", "quote it"}},
		"no kind":     {[]string{"validate", "-f", write("nokind.yaml", "metadata: {name: x}\n")}, []string{"nokind.yaml#1", "kind"}},
		"huge file":   {[]string{"validate", "-f", big}, []string{"big.yaml", "MiB"}},
		"bad format":  {[]string{"validate", "-f", seedDir, "-o", "xml"}, []string{"table, json, junit, sarif"}},
		"bad flag":    {[]string{"validate", "--nope"}, []string{"--nope"}},
		"bad config":  {[]string{"validate", "-f", seedDir, "--config", write("rrguard.yaml", "rules: {no-such-rule: warn}\n")}, []string{"no-such-rule"}},
		"review junk": {[]string{"review", "--state", seedDir, "-f", write("review.json", "{not json")}, []string{"review.json", "AdmissionReview"}},
		// rrguard graph reads its input with the same code, and draws nothing from bad input.
		"graph asn": {[]string{"graph", "-f", write("asn.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {asNumber: \"1.1.1\"}\n")},
			[]string{"asn.yaml#2", "default", "spec.asNumber"}},
		"graph malformed":    {[]string{"graph", "-o", "html", "-f", write("bad.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: a\n")}, []string{"bad.yaml#1", "YAML"}},
		"graph format":       {[]string{"graph", "-f", seedDir, "-o", "png"}, []string{`-o "png"`, "svg, dot, html, json"}},
		"graph unknown node": {[]string{"graph", "-f", seedDir, "--node", "nope"}, []string{"--node nope"}},
		"graph review junk":  {[]string{"graph", "-f", seedDir, "--review", write("r.json", "{not json")}, []string{"r.json", "AdmissionReview"}},
		"graph review without oldObject": {[]string{"graph", "-f", seedDir, "--review", write("del.json", `{"request":{"uid":"u","kind":{"group":"crd.projectcalico.org","version":"v1","kind":"BGPPeer"},"name":"x","operation":"DELETE"}}`)},
			[]string{"del.json", "oldObject"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", c.args...)
			if code != 2 || out != "" {
				t.Errorf("exit %d, want 2 and nothing on stdout\nstdout %.300s\nstderr %s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not name %q: %s", w, errOut)
				}
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace: %s", errOut)
			}
		})
	}
}

func TestValidateSkipsUnknownKinds(t *testing.T) {
	dir := copySeed(t, nil)
	if err := os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "", "validate", "-f", dir)
	if code != 0 || !strings.Contains(errOut, "skipped v1 ConfigMap") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

func TestReview(t *testing.T) {
	state := copySeed(t, map[string][2]string{"bgpconfig.yaml": {"nodeToNodeMeshEnabled: false", "nodeToNodeMeshEnabled: true"}})
	if err := os.Remove(filepath.Join(state, "rr-to-rr-peer.yaml")); err != nil {
		t.Fatal(err)
	}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"crd.projectcalico.org","version":"v1","kind":"BGPConfiguration"},
"resource":{"group":"crd.projectcalico.org","version":"v1","resource":"bgpconfigurations"},"name":"default","operation":"UPDATE",
"object":{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"nodeToNodeMeshEnabled":false,"asNumber":63400}},
"oldObject":{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"nodeToNodeMeshEnabled":true,"asNumber":63400}}}}`
	code, out, errOut := runCLI(t, review, "review", "--state", state)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (denied)\n%s%s", code, out, errOut)
	}
	var doc struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
				Details struct {
					Causes []struct{ Message, Field string } `json:"causes"`
				} `json:"details"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Response.UID != "u1" || doc.Response.Allowed || !strings.Contains(doc.Response.Status.Message, "route-propagation") {
		t.Errorf("response %+v", doc.Response)
	}
	if len(doc.Response.Status.Details.Causes) == 0 {
		t.Errorf("no causes: %s", out)
	}
	// The same change with the reflectors peered is allowed.
	full := copySeed(t, map[string][2]string{"bgpconfig.yaml": {"nodeToNodeMeshEnabled: false", "nodeToNodeMeshEnabled: true"}})
	if code, out, errOut := runCLI(t, review, "review", "--state", full); code != 0 || !strings.Contains(out, `"allowed": true`) {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestReviewPatchesReflectorLabel(t *testing.T) {
	node := `{"apiVersion":"v1","kind":"Node","metadata":{"name":"qtwtv","labels":{"kubernetes.io/hostname":"qtwtv"},"annotations":{"projectcalico.org/IPv4Address":"10.30.0.17/22"%s}}}`
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","kind":{"group":"","version":"v1","kind":"Node"},
"resource":{"group":"","version":"v1","resource":"nodes"},"subResource":"status","name":"qtwtv","operation":"UPDATE","object":` +
		strings.Replace(node, "%s", `,"projectcalico.org/RouteReflectorClusterID":"1.0.0.1"`, 1) + `,"oldObject":` + strings.Replace(node, "%s", "", 1) + `}}`
	code, out, errOut := runCLI(t, review, "review", "--state", seedDir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var doc struct {
		Response struct {
			Allowed   bool   `json:"allowed"`
			Patch     []byte `json:"patch"`
			PatchType string `json:"patchType"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if want := `[{"op":"add","path":"/metadata/labels/route-reflector","value":"true"}]`; string(doc.Response.Patch) != want || doc.Response.PatchType != "JSONPatch" {
		t.Errorf("patch %s (%s), want %s", doc.Response.Patch, doc.Response.PatchType, want)
	}
}
