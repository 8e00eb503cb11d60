package webhook

import (
	"reflect"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSlimNodeKeepsWhatRrguardReads: the cache's Node transform drops the kubelet's image
// list, volumes and system info and the managed fields, and leaves the Calico node rrguard
// reads from it as it was.
func TestSlimNodeKeepsWhatRrguardReads(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"route-reflector": "true", "topology.kubernetes.io/zone": "a"},
			Annotations:   map[string]string{calico.AnnotationIPv4Address: "10.0.0.1/24", "projectcalico.org/RouteReflectorClusterID": "1.0.0.1"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"},
		Status: corev1.NodeStatus{
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}},
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			Images:          []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 320000}},
			VolumesInUse:    []corev1.UniqueVolumeName{"kubernetes.io/csi/x"},
			NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.34.0"},
			VolumesAttached: []corev1.AttachedVolume{{Name: "kubernetes.io/csi/x"}},
		},
	}
	want := calico.NodeFromCore(n.DeepCopy())
	o, err := slimNode(n.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	slim := o.(*corev1.Node)
	if len(slim.Status.Images)+len(slim.Status.VolumesInUse)+len(slim.Status.VolumesAttached)+len(slim.ManagedFields) != 0 || slim.Status.NodeInfo.KubeletVersion != "" {
		t.Errorf("slimNode kept %+v", slim.Status)
	}
	if got := calico.NodeFromCore(slim); !reflect.DeepEqual(got, want) {
		t.Errorf("the Calico node read from the slim Node is\n%+v\nwant\n%+v", got, want)
	}
	if len(slim.Status.Conditions) != 1 || len(slim.Status.Addresses) != 1 || slim.Spec.PodCIDR == "" {
		t.Errorf("slimNode dropped conditions, addresses or spec: %+v", slim)
	}
}
