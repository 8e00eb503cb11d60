package mutate_test

import (
	"fmt"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/mutate"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMutatedNodesValidate: every Node the mutation emits passes validation, even with the
// label auto-fill off (reflector-label then demands the label), and the mutation introduces
// no other finding: mutation and validation agree, as the webhook's two passes must.
func TestMutatedNodesValidate(t *testing.T) {
	const label = "route-reflector"
	state := calico.NewState(validatetest.Generate(validatetest.Layout{Nodes: 12, Reflectors: 3}))
	before := model.NewSnapshot(state)
	strict := validate.New(validate.Config{AutoFillLabel: new(false)})
	cidValues := []string{"", "1.0.0.9", "244.0.0.1", "1.0.0.256", "10.0.0.1/32"}
	labelValues := []string{"", "true", "yes"}
	i := 0
	for _, oldCID := range cidValues {
		for _, cid := range cidValues {
			for _, lv := range labelValues {
				for _, inCalicoLabels := range []bool{false, true} {
					i++
					name := fmt.Sprintf("m%d", i)
					old := newNode(name, oldCID, lv, inCalicoLabels)
					node := newNode(name, cid, lv, inCalicoLabels)
					mutated := mutate.Apply(node, mutate.ReflectorLabel(old, node, label), label)
					for _, f := range strict.Evaluate(t.Context(), model.Change{Operation: model.Update, Old: object(old), Object: object(mutated)}, before) {
						if f.Rule == validate.RuleReflectorLabel && f.Field == "metadata.labels" && cid != "" {
							t.Errorf("old cluster ID %q, new %q, label %q (in projectcalico.org/labels: %v): the mutated node is refused: %s", oldCID, cid, lv, inCalicoLabels, f.Message)
						}
					}
					// What the mutation changed introduces no finding the node did not have.
					unmutated := findings(t, strict, model.Change{Operation: model.Update, Old: object(old), Object: object(node)}, before)
					for _, f := range strict.Evaluate(t.Context(), model.Change{Operation: model.Update, Old: object(node), Object: object(mutated)}, model.NewSnapshot(state.With(object(node)))) {
						if !unmutated[f.Rule] {
							t.Errorf("old cluster ID %q, new %q, label %q: the mutation introduces %s: %s", oldCID, cid, lv, f.Rule, f.Message)
						}
					}
				}
			}
		}
	}
}

func findings(t *testing.T, e *validate.Engine, ch model.Change, before *model.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, f := range e.Evaluate(t.Context(), ch, before) {
		out[f.Rule] = true
	}
	return out
}

func newNode(name, cid, labelValue string, inCalicoLabels bool) *corev1.Node {
	k := &corev1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name},
			Annotations: map[string]string{calico.AnnotationIPv4Address: "10.9.0.1/16"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if cid != "" {
		k.Annotations[calico.AnnotationClusterID] = cid
	}
	if labelValue != "" {
		if inCalicoLabels {
			k.Annotations[calico.AnnotationLabels] = fmt.Sprintf(`{"route-reflector":%q}`, labelValue)
		} else {
			k.Labels["route-reflector"] = labelValue
		}
	}
	return k
}

func object(k *corev1.Node) *calico.Object {
	return &calico.Object{Kind: calico.KindNode, Name: k.Name, CoreNode: k, Node: calico.NodeFromCore(k)}
}
