package cluster

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func node(labels map[string]string, heartbeat time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels, Annotations: map[string]string{"projectcalico.org/IPv4Address": "10.0.0.1/24"}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(heartbeat)}}},
	}
}

func TestStoreIgnoresWhatCalicoDoesNotRead(t *testing.T) {
	s := NewStore()
	changes := 0
	s.OnChange = func() { changes++ }
	if !s.UpsertNode(node(map[string]string{"a": "b"}, time.Unix(1, 0))) {
		t.Fatal("a new node is a change")
	}
	first := s.Snapshot()
	if s.UpsertNode(node(map[string]string{"a": "b"}, time.Unix(2, 0))) {
		t.Error("a heartbeat changed the BGP picture")
	}
	if s.Snapshot() != first {
		t.Error("the snapshot was rebuilt for a heartbeat")
	}
	if !s.UpsertNode(node(map[string]string{"a": "c"}, time.Unix(3, 0))) || s.Snapshot() == first {
		t.Error("a label change must rebuild the snapshot (selectors read labels)")
	}
	if changes != 2 {
		t.Errorf("OnChange called %d times, want 2", changes)
	}
	s.Delete("", "Node", "n1")
	if len(s.Snapshot().State.NodeNames()) != 0 || changes != 3 {
		t.Errorf("delete: nodes %v, changes %d", s.Snapshot().State.NodeNames(), changes)
	}
}

func TestStoreUnreadable(t *testing.T) {
	s := NewStore()
	bad := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer", "metadata": map[string]interface{}{"name": "p"},
		"spec": map[string]interface{}{"asNumber": "1.1.1"},
	}}
	if _, err := s.Upsert(bad); err == nil {
		t.Fatal("an unparsable AS number must be an error")
	}
	if s.Unreadable() != 1 {
		t.Errorf("unreadable = %d", s.Unreadable())
	}
	bad.Object["spec"] = map[string]interface{}{"asNumber": int64(64512), "peerIP": "10.0.0.9"}
	if _, err := s.Upsert(bad); err != nil || s.Unreadable() != 0 {
		t.Errorf("fixed object: err %v, unreadable %d", err, s.Unreadable())
	}
	if got := s.Snapshot().State.PeerNames(); len(got) != 1 {
		t.Errorf("peers %v", got)
	}
}
