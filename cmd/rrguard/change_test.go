package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// documentLine returns the line of the apiVersion of the document of file that names name.
func documentLine(t *testing.T, file, name string) int {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	at := 0
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "apiVersion:") {
			at = i + 1
		}
		if strings.Contains(line, "name: "+name) {
			return at
		}
	}
	t.Fatalf("%s does not name %s", file, name)
	return 0
}

// TestValidateSARIFLocations: each SARIF result points at the file and line its object was
// read from, as GitHub code scanning requires of every result.
func TestValidateSARIFLocations(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"peer.yaml": {`peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`}})
	code, out, errOut := runCLI(t, "", "validate", "-f", dir, "-o", "sarif")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
					LogicalLocations []struct{ Name string } `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"node-peer-to-rr": "peer.yaml", "qtwtv": "nodes.yaml", "uqwst": "nodes.yaml", "zyisy": "zyisy.yaml", "rxgks": "rxgks.yaml"}
	results := log.Runs[0].Results
	if len(results) < 2 {
		t.Fatalf("%d results, want the typo's and what it breaks:\n%s", len(results), out)
	}
	for _, r := range results {
		loc := r.Locations[0]
		name := loc.LogicalLocations[0].Name
		file, ok := files[name]
		if !ok {
			t.Errorf("%s about %s: no file expected", r.RuleID, name)
			continue
		}
		want := filepath.ToSlash(filepath.Join(dir, file))
		if got := loc.PhysicalLocation; got.ArtifactLocation.URI != "file://"+want || got.Region.StartLine != documentLine(t, filepath.Join(dir, file), name) {
			t.Errorf("%s about %s at %s line %d, want %s line %d", r.RuleID, name, got.ArtifactLocation.URI, got.Region.StartLine,
				want, documentLine(t, filepath.Join(dir, file), name))
		}
	}
}

// TestValidateAgainstNoCluster: --context or --kubeconfig makes validate read the cluster; one
// that cannot be read is exit 2, naming what failed.
func TestValidateAgainstNoCluster(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: down, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: down, context: {cluster: down, user: u}}]
current-context: down
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no kubeconfig":    {[]string{"validate", "-f", seedDir, "--kubeconfig", filepath.Join(dir, "nope")}, "kubeconfig"},
		"no such context":  {[]string{"validate", "-f", seedDir, "--kubeconfig", kubeconfig, "--context", "prod"}, `context "prod"`},
		"cluster down":     {[]string{"validate", "-f", seedDir, "--kubeconfig", kubeconfig}, "https://127.0.0.1:1"},
		"diff down":        {[]string{"diff", "-f", seedDir, "--kubeconfig", kubeconfig}, "https://127.0.0.1:1"},
		"diff no input":    {[]string{"diff", "--kubeconfig", kubeconfig}, "-f"},
		"diff bad format":  {[]string{"diff", "-f", seedDir, "-o", "svg"}, "table, json"},
		"diff bad input":   {[]string{"diff", "-f", filepath.Join(dir, "nope.yaml"), "--kubeconfig", kubeconfig}, "nope.yaml"},
		"validate no file": {[]string{"validate", "--context", "prod"}, "-f"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", c.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, an error naming %q", code, out, errOut, c.want)
			}
		})
	}
}
