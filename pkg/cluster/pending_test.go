package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// twoPeerings is a cluster whose clients reach their two reflectors through two BGPPeers, one
// per reflector, with minReflectors 1: deleting either peer alone leaves every client one
// reflector; deleting both cuts them off.
func twoPeerings(t *testing.T) *Store {
	s := NewStore()
	add := func(name, ip string, labels map[string]string, cid string) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{calico.AnnotationIPv4Address: ip + "/24"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if cid != "" {
			n.Annotations[calico.AnnotationClusterID] = cid
		}
		s.UpsertNode(n)
	}
	add("r1", "10.0.0.1", map[string]string{"rr": "1"}, "1.0.0.1")
	add("r2", "10.0.0.2", map[string]string{"rr": "2"}, "1.0.0.2")
	for i := range 3 {
		add(fmt.Sprintf("c%d", i), fmt.Sprintf("10.0.0.%d", 11+i), map[string]string{"client": "true"}, "")
	}
	for _, o := range []map[string]any{
		peerDoc("to-r1", "has(client)", "rr == '1'"), peerDoc("to-r2", "has(client)", "rr == '2'"), peerDoc("rr", "has(rr)", "has(rr)"),
		{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"}, "spec": map[string]any{"nodeToNodeMeshEnabled": false}},
	} {
		if _, err := s.Upsert(&unstructured.Unstructured{Object: o}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func peerDoc(name, nodeSel, peerSel string) map[string]any {
	return map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"nodeSelector": nodeSel, "peerSelector": peerSel}}
}

func peerObject(t *testing.T, s *Store, name string) *calico.Object {
	p := s.Snapshot().State.Peer(name)
	if p == nil {
		t.Fatalf("no peer %s", name)
	}
	return &calico.Object{Kind: calico.KindBGPPeer, Group: p.Group, Name: name, Peer: p.BGPPeer}
}

// decide judges ch in s.Judge as the webhook does and reports whether it was refused.
func decide(s *Store, e *validate.Engine, now time.Time, ch model.Change) (refused bool) {
	s.Judge(now, func(snap *model.Snapshot) (*model.Change, *model.Snapshot) {
		refused = false
		findings, after := e.EvaluateAfter(context.Background(), ch, snap)
		for _, f := range findings {
			if f.Action == validate.Deny {
				refused = true
			}
		}
		if refused {
			after.ReleaseOver(snap)
			return nil, nil
		}
		return &ch, after
	})
	return refused
}

// twoDeletions is twoPeerings judged with minReflectors 1, a time, and the deletions of its
// two client peerings (each harmless alone, not both).
func twoDeletions(t *testing.T) (*Store, *validate.Engine, time.Time, model.Change, model.Change) {
	s := twoPeerings(t)
	return s, validate.New(validate.Config{MinReflectors: 1}), time.Unix(1000, 0),
		model.Change{Operation: model.Delete, Old: peerObject(t, s, "to-r1")},
		model.Change{Operation: model.Delete, Old: peerObject(t, s, "to-r2")}
}

// TestJudgeTogether: two deletions each harmless alone are judged together while the first
// has not reached the informers; once it has, or once it expires, it is judged against the
// store alone.
func TestJudgeTogether(t *testing.T) {
	s, e, now, first, second := twoDeletions(t)
	if decide(s, e, now, first) {
		t.Fatal("deleting to-r1 alone is refused")
	}
	if s.Pending() != 1 {
		t.Fatalf("%d pending changes, want the deletion of to-r1", s.Pending())
	}
	if !decide(s, e, now.Add(time.Second), second) {
		t.Fatal("deleting to-r2 while the deletion of to-r1 is on its way is allowed: the clients are cut off")
	}
	// The informers deliver the first deletion: the second is still refused (now for real).
	s.Delete(calico.GroupCRD, calico.KindBGPPeer, "to-r1")
	if s.Pending() != 0 {
		t.Fatalf("%d pending changes after the deletion arrived", s.Pending())
	}
	if !decide(s, e, now.Add(2*time.Second), second) {
		t.Fatal("deleting to-r2 after to-r1 is allowed")
	}
}

// TestJudgeAgainWhenOvertaken: decisions run concurrently; one that keeps a change but was
// overtaken by another kept change while it ran is taken again against the state with that
// one laid over it. Here the deletion of to-r2 is decided while the deletion of to-r1 is
// allowed and committed: alone it would pass, taken again it is refused.
func TestJudgeAgainWhenOvertaken(t *testing.T) {
	s, e, now, first, second := twoDeletions(t)
	var verdicts []bool
	s.Judge(now, func(snap *model.Snapshot) (*model.Change, *model.Snapshot) {
		if len(verdicts) == 0 && decide(s, e, now, first) {
			t.Fatal("deleting to-r1 alone is refused")
		}
		findings, after := e.EvaluateAfter(context.Background(), second, snap)
		refused := slices.ContainsFunc(findings, func(f validate.Finding) bool { return f.Action == validate.Deny })
		verdicts = append(verdicts, refused)
		if refused {
			return nil, nil
		}
		return &second, after
	})
	if len(verdicts) != 2 || verdicts[0] || !verdicts[1] {
		t.Fatalf("the deletion of to-r2, decided while the deletion of to-r1 was allowed: refused %v, want allowed alone and then refused when taken again", verdicts)
	}
	if s.Pending() != 1 {
		t.Errorf("%d pending changes, want only the deletion of to-r1", s.Pending())
	}
}

// TestPendingExpires: an allowed write that never lands (another webhook refused it) stops
// counting after PendingTTL.
func TestPendingExpires(t *testing.T) {
	s := twoPeerings(t)
	e := validate.New(validate.Config{MinReflectors: 1})
	now := time.Unix(1000, 0)
	if decide(s, e, now, model.Change{Operation: model.Delete, Old: peerObject(t, s, "to-r1")}) {
		t.Fatal("deleting to-r1 alone is refused")
	}
	if decide(s, e, now.Add(PendingTTL+time.Second), model.Change{Operation: model.Delete, Old: peerObject(t, s, "to-r2")}) {
		t.Error("the deletion of to-r1 never landed, yet still counts after its expiry")
	}
}

// TestJudgeConcurrently: a burst of concurrent deletions, each harmless alone, lets through
// only what leaves the clients a reflector (race detector: the overlay is shared).
func TestJudgeConcurrently(t *testing.T) {
	s := twoPeerings(t)
	e := validate.New(validate.Config{MinReflectors: 1})
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for _, name := range []string{"to-r1", "to-r2", "to-r1", "to-r2", "to-r1", "to-r2"} {
		ch := model.Change{Operation: model.Delete, Old: peerObject(t, s, name)}
		wg.Go(func() {
			if !decide(s, e, now, ch) {
				mu.Lock()
				allowed[name]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Deleting the same peer again is allowed (it is gone already); deleting both never is.
	if allowed["to-r1"] > 0 && allowed["to-r2"] > 0 {
		t.Errorf("both peerings were allowed to go: %v", allowed)
	}
}

// TestPendingLandsWithDefaults: a change lands when the store holds the object as allowed
// plus fields the API server defaulted (Calico's API server stores a projectcalico.org/v3
// BGPConfiguration through the crd.projectcalico.org/v1 CRD, which adds
// serviceLoadBalancerAggregation); not when a field it set has another value.
func TestPendingLandsWithDefaults(t *testing.T) {
	config := func(spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration",
			"metadata": map[string]any{"name": "default"}, "spec": spec}}
	}
	for _, c := range []struct {
		name   string
		stored map[string]any
		landed bool
	}{
		{"with a default", map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": int64(64600), "serviceLoadBalancerAggregation": "Enabled"}, true},
		{"another AS", map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": int64(64700), "serviceLoadBalancerAggregation": "Enabled"}, false},
	} {
		s := twoPeerings(t)
		e := validate.New(validate.Config{MinReflectors: 1})
		old, err := calico.Decode(config(map[string]any{"nodeToNodeMeshEnabled": false}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Upsert(config(map[string]any{"nodeToNodeMeshEnabled": false})); err != nil {
			t.Fatal(err)
		}
		allowed, err := calico.Decode(config(map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": int64(64600)}))
		if err != nil {
			t.Fatal(err)
		}
		if decide(s, e, time.Unix(1000, 0), model.Change{Operation: model.Update, Object: allowed, Old: old}) {
			t.Fatalf("%s: changing the AS is refused", c.name)
		}
		if s.Pending() != 1 {
			t.Fatalf("%s: %d pending changes, want the AS change", c.name, s.Pending())
		}
		if _, err := s.Upsert(config(c.stored)); err != nil {
			t.Fatal(err)
		}
		if got := s.Pending() == 0; got != c.landed {
			t.Errorf("%s: landed %v, want %v", c.name, got, c.landed)
		}
	}
}
