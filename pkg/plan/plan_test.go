package plan_test

import (
	"fmt"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cluster is n Ready nodes spread round-robin over zones, mesh on (no BGPConfiguration).
func cluster(n int, zones ...string) []*calico.Object {
	var out []*calico.Object
	for i := 0; i < n; i++ {
		out = append(out, validatetest.Node(fmt.Sprintf("node-%03d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256+1), zones[i%len(zones)], ""))
	}
	return out
}

func meshOff() *calico.Object {
	off := false
	c := &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: &off}}
	return &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default", Config: c}
}

func coreNodes(objs []*calico.Object) []*corev1.Node {
	var out []*corev1.Node
	for _, o := range objs {
		if o.CoreNode != nil {
			out = append(out, o.CoreNode)
		}
	}
	return out
}

func makePlan(t *testing.T, objs []*calico.Object, o plan.Options) (*plan.Plan, error) {
	t.Helper()
	return plan.Make(t.Context(), validate.New(validate.Config{}), calico.NewState(objs), coreNodes(objs), o)
}

func TestMeshOnMigration(t *testing.T) {
	p, err := makePlan(t, cluster(30, "a", "b", "c"), plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		t.Logf("%d %s %s %v", s.Number, s.Phase, s.Summary, s.Warnings)
	}
	t.Log(p.Notes)
}
