package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// coreNode is a core/v1 Node document as kubectl prints it.
func coreNode(name, extra string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata:\n  name: %s\n  labels:\n    kubernetes.io/hostname: %s\n%sspec:\n  podCIDR: 10.244.0.0/24\n", name, name, extra)
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadOrder: documents are decoded on every core, yet objects, notes and sources come in
// the order of the input, across files and across the batches the loader hands out.
func TestLoadOrder(t *testing.T) {
	var a, b []string
	for i := range 3 * batchSize {
		a = append(a, coreNode(fmt.Sprintf("a-%03d", i), ""))
	}
	a = append(a, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	for i := range batchSize + 5 {
		b = append(b, coreNode(fmt.Sprintf("b-%03d", i), ""))
	}
	b = append(b, coreNode("a-007", "  annotations:\n    projectcalico.org/IPv4Address: 10.0.0.7/24\n"))
	dir := writeFiles(t, map[string]string{"a.yaml": strings.Join(a, "---\n"), "b.yaml": strings.Join(b, "---\n")})
	m, err := LoadFiles([]string{dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 3*batchSize+batchSize+6 {
		t.Fatalf("%d objects", len(m.Objects))
	}
	for i, o := range m.Objects[:3*batchSize] {
		if want := fmt.Sprintf("a-%03d", i); o.Name != want {
			t.Fatalf("object %d is %s, want %s", i, o.Name, want)
		}
	}
	last := m.Objects[len(m.Objects)-1]
	if last.Name != "a-007" || last.Node.IPv4Address != "10.0.0.7/24" {
		t.Errorf("last object %s %+v", last.Name, last.Node)
	}
	wantNotes := []string{
		filepath.Join(dir, "a.yaml") + fmt.Sprintf("#%d: skipped v1 ConfigMap \"c\"", 3*batchSize+1),
		filepath.Join(dir, "b.yaml") + fmt.Sprintf("#%d: Node \"a-007\" was already defined in %s#8", batchSize+6, filepath.Join(dir, "a.yaml")),
	}
	if len(m.Notes) != 2 || !strings.HasPrefix(m.Notes[0], wantNotes[0]) || !strings.HasPrefix(m.Notes[1], wantNotes[1]) {
		t.Errorf("notes %q\nwant   %q", m.Notes, wantNotes)
	}
	// The later definition is used.
	if n := m.State().Node("a-007"); n.IPv4Address != "10.0.0.7/24" {
		t.Errorf("a-007 = %+v", n)
	}
	if got, want := m.Sources["Node/b-000"], (Source{Document: filepath.Join(dir, "b.yaml") + "#1", File: filepath.Join(dir, "b.yaml"), Line: 1}); got != want {
		t.Errorf("source of b-000: %+v, want %+v", got, want)
	}
	// Each node of b.yaml is 8 lines and a separator; a-007 is its last document.
	if got, want := m.Sources["Node/a-007"].Line, 9*(batchSize+5)+1; got != want {
		t.Errorf("a-007 starts on line %d of b.yaml, want %d", got, want)
	}
}

// TestLoadFirstError: the error reported is the first in the input's order, however the
// documents were shared out: a bad document late in the first file wins over an earlier
// document of a later file, and over a missing file named after it.
func TestLoadFirstError(t *testing.T) {
	var a []string
	for i := range 2*batchSize + 3 {
		a = append(a, coreNode(fmt.Sprintf("a-%03d", i), ""))
	}
	a = append(a, "apiVersion: v1\nkind: Node\nmetadata: {name: bad, labels: {x: [1]}}\n")
	dir := writeFiles(t, map[string]string{
		"a.yaml": strings.Join(a, "---\n"),
		"b.yaml": "apiVersion: v1\nkind: Node\nmetadata: {name: [b]}\n",
	})
	_, err := LoadFiles([]string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "missing.yaml")}, LoadOptions{})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Source != filepath.Join(dir, "a.yaml")+fmt.Sprintf("#%d", 2*batchSize+4) {
		t.Fatalf("err = %v", err)
	}
	_, err = LoadFiles([]string{filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "a.yaml")}, LoadOptions{})
	if !errors.As(err, &ie) || ie.Source != filepath.Join(dir, "missing.yaml") {
		t.Fatalf("err = %v", err)
	}
	_, err = LoadFiles([]string{filepath.Join(dir, "b.yaml")}, LoadOptions{})
	if !errors.As(err, &ie) || ie.Source != filepath.Join(dir, "b.yaml")+"#1" {
		t.Fatalf("err = %v", err)
	}
}

// TestLoadWholeNodes: rrguard plan writes nodes back and reads cordons, so it keeps each core
// Node whole; rrguard validate keeps only what it judges.
func TestLoadWholeNodes(t *testing.T) {
	dir := writeFiles(t, map[string]string{"n.yaml": coreNode("n1", "") + "  unschedulable: true\n  providerID: aws:///eu-west-1a/i-1\n"})
	m, err := LoadFiles([]string{dir}, LoadOptions{WholeNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	k := m.Objects[0].CoreNode
	if k == nil || !k.Spec.Unschedulable || k.Spec.ProviderID != "aws:///eu-west-1a/i-1" || k.Labels["kubernetes.io/hostname"] != "n1" {
		t.Fatalf("whole node: %+v", k)
	}
	light, err := LoadFiles([]string{dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := light.Objects[0]; o.CoreNode != nil || o.Node == nil || !o.Node.FromCore || o.Node.K8sLabels["kubernetes.io/hostname"] != "n1" {
		t.Fatalf("light node: %+v", o)
	}
}

// TestConfigMapMount: a directory laid out as a mounted ConfigMap (files linked to ..data,
// a link to the ..<timestamp> directory that holds them) reads each file once, as does a
// directory with a .git directory in it.
func TestConfigMapMount(t *testing.T) {
	dir := t.TempDir()
	stamp := filepath.Join(dir, "..2026_12_07_13_00_00.123456789")
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(stamp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stamp, "nodes.yaml"), []byte(coreNode("n1", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "x.yaml"), []byte(coreNode("n2", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(stamp), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "nodes.yaml"), filepath.Join(dir, "nodes.yaml")); err != nil {
		t.Fatal(err)
	}
	m, err := LoadFiles([]string{dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 1 || len(m.Notes) != 0 {
		t.Errorf("objects %d, notes %q; want the one Node once", len(m.Objects), m.Notes)
	}
}
