package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// meshCluster writes n Ready core/v1 Nodes in zones a, b, c (the mesh on) into a directory.
func meshCluster(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Node
metadata:
  name: node-%02d
  labels: {topology.kubernetes.io/zone: %s}
  annotations: {projectcalico.org/IPv4Address: 10.0.0.%d/24}
status:
  conditions: [{type: Ready, status: "True"}]
`, i, string(rune('a'+i%3)), i+1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nodes.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPlanOutputs(t *testing.T) {
	dir := meshCluster(t, 12)
	code, out, errOut := runCLI(t, "", "plan", "-f", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "12 steps") || !strings.Contains(out, " 11. [mesh] turn the node-to-node mesh off") {
		t.Errorf("table:\n%s", out)
	}
	code, out, errOut = runCLI(t, "", "plan", "-f", dir, "-o", "yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	docs := strings.Split(strings.TrimPrefix(out, "---\n"), "---\n")
	if len(docs) != 12 {
		t.Fatalf("%d documents, want 12:\n%s", len(docs), out)
	}
	kinds := map[string]int{}
	for i, d := range docs {
		var obj struct {
			APIVersion, Kind string
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if !strings.HasPrefix(d, fmt.Sprintf("# step %d ", i+1)) {
			t.Errorf("document %d does not start with its step: %q", i+1, d)
		}
		kinds[obj.APIVersion+" "+obj.Kind]++
	}
	if kinds["v1 Node"] != 6 || kinds["projectcalico.org/v3 BGPPeer"] != 5 || kinds["projectcalico.org/v3 BGPConfiguration"] != 1 {
		t.Errorf("kinds %v", kinds)
	}
	outDir := filepath.Join(t.TempDir(), "steps")
	if code, out, errOut = runCLI(t, "", "plan", "-f", dir, "--out", outDir); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	files, _ := os.ReadDir(outDir)
	if len(files) != 12 || files[0].Name() != "01-peer-bgppeer-rrguard-reflectors.yaml" {
		t.Errorf("files %v", files)
	}
	if code, _, errOut = runCLI(t, "", "plan", "-f", dir, "--out", outDir); code != 2 || !strings.Contains(errOut, "not empty") {
		t.Errorf("into a full directory: exit %d, %s", code, errOut)
	}
}

func TestPlanExitCodes(t *testing.T) {
	one := meshCluster(t, 1)
	dir := meshCluster(t, 12)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan", "-f", one}, 1, "no safe plan: only 1 node(s) take part in BGP"},
		{[]string{"plan", "-f", dir, "--exclude", "topology.kubernetes.io/zone == 'b'"}, 1, "zone b has 4 node(s) but none can be a reflector"},
		{[]string{"plan", "-f", dir, "--reflectors-per-zone", "1"}, 2, "--reflectors-per-zone 1"},
		{[]string{"plan", "-f", dir, "--apply"}, 2, "--apply writes to a live cluster"},
		{[]string{"plan", "-f", dir, "--as", "1.2.3"}, 2, "--as"},
		{[]string{"plan", "-f", dir, "-o", "sarif"}, 2, "-o \"sarif\""},
	} {
		code, out, errOut := runCLI(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d saying %q", tc.args, code, errOut, out, tc.code, tc.want)
		}
	}
}

// TestPlanSeedReplacement: the seed's rxgks (made a reflector with calicoctl replace of a v3
// Node file) goes NotReady: qtwtv takes its place first, then rxgks loses its cluster ID and
// the label calicoctl keeps in projectcalico.org/labels.
func TestPlanSeedReplacement(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"nodes.yaml": {
		"annotations: {projectcalico.org/IPv4Address: 10.30.0.16/22}",
		"annotations: {projectcalico.org/IPv4Address: 10.30.0.16/22}\nstatus: {conditions: [{type: Ready, status: \"False\"}]}",
	}})
	code, out, errOut := runCLI(t, "", "plan", "-f", dir, "-o", "yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	made := strings.Index(out, "# step 3 [reflector]: make qtwtv a reflector")
	retire := strings.Index(out, "# step 4 [retire]: retire reflector rxgks")
	if made < 0 || retire < made {
		t.Fatalf("want qtwtv made a reflector before rxgks retires:\n%s", out)
	}
	for _, want := range []string{"kubectl annotate node rxgks projectcalico.org/RouteReflectorClusterID-", "kubectl annotate node rxgks projectcalico.org/labels-"} {
		if !strings.Contains(out[retire:], want) {
			t.Errorf("the retirement lacks %q:\n%s", want, out[retire:])
		}
	}
}

// TestPlanCordonedFromFiles: a node cordoned in the manifests (spec.unschedulable) is never
// made a reflector: the plan reads each core Node whole from files, as from the cluster.
func TestPlanCordonedFromFiles(t *testing.T) {
	dir := meshCluster(t, 12)
	path := filepath.Join(dir, "nodes.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "---\n")
	for i, d := range docs {
		if strings.Contains(d, "name: node-00\n") || strings.Contains(d, "name: node-03\n") {
			docs[i] = strings.Replace(d, "status:\n", "spec:\n  unschedulable: true\nstatus:\n", 1)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "plan", "-f", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "node-00 244") || strings.Contains(out, "node-03 244") || !strings.Contains(out, "node-06 244.0.0.1, node-09 244.0.0.1") {
		t.Errorf("a cordoned node is made a reflector:\n%s", out)
	}
}
