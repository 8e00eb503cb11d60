package plan_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/plan"
	corev1 "k8s.io/api/core/v1"
)

// TestRenderRetirement: a retirement, which no manifest can say, is the kubectl commands that
// do it: comments in the YAML stream, a script with --out.
func TestRenderRetirement(t *testing.T) {
	objs := slices.Clone(planned(t))
	i := slices.IndexFunc(objs, func(o *calico.Object) bool { return o.Name == "node-001" })
	k := objs[i].CoreNode.DeepCopy()
	k.Status.Conditions[0].Status = corev1.ConditionFalse
	objs[i] = calico.NodeObject(k)
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := plan.Write(&b, "yaml", p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# run: kubectl label node node-001 route-reflector-\n",
		"# run: kubectl annotate node node-001 projectcalico.org/RouteReflectorClusterID-\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the YAML stream lacks %q:\n%s", want, b.String())
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := plan.WriteDir(dir, p); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "2-retire-node-node-001.sh"))
	if err != nil {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("%v; files %v", err, entries)
	}
	if !strings.Contains(string(script), "set -e\nkubectl label node node-001 route-reflector-\nkubectl annotate node node-001 projectcalico.org/RouteReflectorClusterID-\n") {
		t.Errorf("script:\n%s", script)
	}
}
