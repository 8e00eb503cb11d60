package calico

import (
	"context"
	"encoding/json"
	"maps"
	"testing"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/backend/k8s/resources"
	"github.com/projectcalico/calico/libcalico-go/lib/backend/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

func v3(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]interface{}
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// TestNodeUpdateCalicoctlMatchesCalico runs Calico's own Kubernetes-datastore Node client (the
// code calicoctl replace uses) against a fake clientset and checks that NodeUpdateCalicoctl
// writes the same annotations and labels.
func TestNodeUpdateCalicoctlMatchesCalico(t *testing.T) {
	current := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "zyisy", ResourceVersion: "7",
			Labels: map[string]string{"kubernetes.io/hostname": "zyisy", "route-reflector": "true"},
			Annotations: map[string]string{
				AnnotationIPv4Address: "10.30.0.13/22", AnnotationIPv4IPIPTunnelAddr: "192.168.0.1",
				AnnotationClusterID: "1.0.0.9", AnnotationASNumber: "64000", "unrelated": "kept",
			}},
	}
	cases := map[string]string{
		"reflector":        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: zyisy}\nspec: {bgp: {ipv4Address: 10.30.0.13/22, routeReflectorClusterID: 1.0.0.1}}",
		"demote":           "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: zyisy}\nspec: {bgp: {ipv4Address: 10.30.0.13/22}}",
		"labels and asdot": "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: zyisy, labels: {route-reflector: \"true\", rack: r1}}\nspec: {bgp: {ipv4Address: 10.30.0.13/22, ipv6Address: fd00::d/64, asNumber: \"1.10\"}}",
		"no bgp":           "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: zyisy}\nspec: {ipv4VXLANTunnelAddr: 10.0.0.1}",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			obj := v3(t, doc)
			ours, err := NodeUpdateCalicoctl(current, obj)
			if err != nil {
				t.Fatal(err)
			}
			cs := fake.NewSimpleClientset(current.DeepCopy())
			var cn libapiv3.Node
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &cn); err != nil {
				t.Fatal(err)
			}
			kvp := &model.KVPair{Key: model.ResourceKey{Name: "zyisy", Kind: libapiv3.KindNode}, Value: &cn}
			if _, err := resources.NewNodeClient(cs, false).Update(context.Background(), kvp); err != nil {
				t.Fatal(err)
			}
			theirs, err := cs.CoreV1().Nodes().Get(context.Background(), "zyisy", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(ours.Annotations, theirs.Annotations) {
				a, _ := json.MarshalIndent(ours.Annotations, "", " ")
				b, _ := json.MarshalIndent(theirs.Annotations, "", " ")
				t.Errorf("annotations differ from Calico's:\nours   %s\ncalico %s", a, b)
			}
			if !maps.Equal(ours.Labels, theirs.Labels) {
				t.Errorf("labels %v, Calico's %v", ours.Labels, theirs.Labels)
			}
		})
	}
}

func TestNodeFromCore(t *testing.T) {
	k := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "k8s", "b": "k8s"},
			Annotations: map[string]string{AnnotationLabels: `{"b":"calico","c":"calico"}`, AnnotationIPv4Address: "10.0.0.1/24", AnnotationClusterID: "244.0.0.1/32", AnnotationASNumber: "1.10"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}},
	}
	n := NodeFromCore(k)
	if got := n.Labels(); got["a"] != "k8s" || got["b"] != "k8s" || got["c"] != "calico" {
		t.Errorf("merged labels %v: Kubernetes labels must win", got)
	}
	m := n.Model()
	if m.IPv4 != "10.0.0.1" || m.ClusterID != "244.0.0.1" || m.AS != 65546 || m.Ready {
		t.Errorf("model %+v", m)
	}
	if ClusterIDProblem(n.ClusterID) == "" {
		t.Error("a masked cluster ID must be flagged")
	}
	for id, ok := range map[string]bool{"245.0.0.1": true, "1.0.0.1": true, "abcdef": false, "300.34.3.1": false, "1.0.0.256": false, "::1": false, "": true} {
		if got := ClusterIDProblem(id) == ""; got != ok {
			t.Errorf("ClusterIDProblem(%q) ok=%v, want %v", id, got, ok)
		}
	}
	k.Annotations[AnnotationLabels] = "not json"
	if NodeFromCore(k).CalicoLabelsError == nil {
		t.Error("a bad projectcalico.org/labels must be reported")
	}
}

func TestParseASN(t *testing.T) {
	for in, want := range map[string]uint32{"64512": 64512, "1.10": 65546, "65535.65535": 4294967295, "0": 0} {
		if got, err := ParseASN(in); err != nil || got != want {
			t.Errorf("ParseASN(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"1.1.1", "65536.65535", "4294967296", "-1", "abc", ""} {
		if _, err := ParseASN(bad); err == nil {
			t.Errorf("ParseASN(%q) accepted", bad)
		}
	}
}

// TestLabel: one label of the Calico label set, the Kubernetes label winning over a
// projectcalico.org/labels one of the same key, as in Labels.
func TestLabel(t *testing.T) {
	n := &Node{K8sLabels: map[string]string{"zone": "a", "k8s": "1"}, CalicoLabels: map[string]string{"zone": "calico", "calico": "2"}}
	for _, key := range []string{"zone", "k8s", "calico", "missing"} {
		v, ok := n.Label(key)
		want, wantOK := n.Labels()[key]
		if v != want || ok != wantOK {
			t.Errorf("Label(%q) = %q, %v; Labels() has %q, %v", key, v, ok, want, wantOK)
		}
	}
}
