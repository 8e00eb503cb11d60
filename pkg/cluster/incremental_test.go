package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// rebuilt is the snapshot the store's objects give when analysed from scratch.
func (s *Store) rebuilt() *model.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return model.NewSnapshot(calico.NewState(s.sortedObjects()))
}

func auditLines(ctx context.Context, e *validate.Engine, s *model.Snapshot) []string {
	var out []string
	for _, f := range e.Audit(ctx, s) {
		out = append(out, fmt.Sprintf("%s %s %s %s", f.Rule, f.Object, f.Field, f.Message))
	}
	slices.Sort(out)
	return out
}

// TestIncrementalSnapshotMatchesRebuild: Node changes laid over the snapshot (adds, label and
// reflector changes, address loss, deletes, unknown deletes) give the audit a rebuild gives.
func TestIncrementalSnapshotMatchesRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 17))
	for _, layout := range []validatetest.Layout{{Nodes: 60, Reflectors: 3}, {Nodes: 90, Reflectors: 6, Zones: 3}} {
		s := storeWith(t, validatetest.Generate(layout))
		e := validate.New(validate.DefaultConfig())
		incremental := 0
		for round := 0; round < 150; round++ {
			before := s.Snapshot()
			for n := rng.IntN(4); n >= 0; n-- {
				i := rng.IntN(layout.Nodes + 5)
				name := fmt.Sprintf("node-%05d", i)
				cid := ""
				if rng.IntN(6) == 0 {
					cid = fmt.Sprintf("1.0.0.%d", 1+rng.IntN(3))
				}
				o := validatetest.Node(name, fmt.Sprintf("10.1.0.%d", i%250), fmt.Sprintf("zone-%d", rng.IntN(3)), cid)
				switch rng.IntN(5) {
				case 0:
					s.Delete("", calico.KindNode, name)
				case 1:
					delete(o.CoreNode.Annotations, calico.AnnotationIPv4Address)
					s.UpsertNode(o.CoreNode)
				default:
					o.CoreNode.Labels["team"] = fmt.Sprint(rng.IntN(3))
					s.UpsertNode(o.CoreNode)
				}
			}
			got := s.Snapshot()
			if got != before && !s.rebuiltLast() {
				incremental++
			}
			if g, w := auditLines(t.Context(), e, got), auditLines(t.Context(), e, s.rebuilt()); !slices.Equal(g, w) {
				t.Fatalf("round %d: incremental snapshot audits\n%s\nrebuilt\n%s", round, strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
		}
		if incremental == 0 {
			t.Errorf("%+v: no snapshot was built incrementally", layout)
		}
	}
}

func (s *Store) rebuiltLast() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.depth == 0
}

// storeWith fills a store with objects as the informers would.
func storeWith(tb testing.TB, objs []*calico.Object) *Store {
	tb.Helper()
	s := NewStore()
	for _, o := range objs {
		upsert(tb, s, o, "crd.projectcalico.org/v1")
	}
	return s
}

// upsert delivers o to the store as an informer of apiVersion would (core Nodes as Nodes).
func upsert(tb testing.TB, s *Store, o *calico.Object, apiVersion string) {
	tb.Helper()
	var in interface{}
	kind := calico.KindBGPPeer
	switch {
	case o.CoreNode != nil:
		s.UpsertNode(o.CoreNode)
		return
	case o.Peer != nil:
		in = o.Peer
	case o.Config != nil:
		in, kind = o.Config, calico.KindBGPConfiguration
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(in)
	if err != nil {
		tb.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: raw}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if _, err := s.Upsert(u); err != nil {
		tb.Fatal(err)
	}
}

// TestLaidOverPeersMatchRebuild: BGPPeer changes (selectors rewritten, peers created and
// deleted, in either API group, both groups holding one name at times) and mesh switches,
// mixed with Node changes, are laid over the snapshot and audit as a rebuild does.
func TestLaidOverPeersMatchRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 29))
	layout := validatetest.Layout{Nodes: 90, Reflectors: 6, Zones: 3}
	s := storeWith(t, validatetest.Generate(layout))
	e := validate.New(validate.DefaultConfig())
	selectors := []string{"has(route-reflector)", "!has(route-reflector)", "topology.kubernetes.io/zone == 'zone-1'",
		"topology.kubernetes.io/zone in {'zone-0', 'zone-2'}", "!has(route-reflector) && team == '1'", "all()"}
	groups := map[string]string{calico.GroupCRD: "crd.projectcalico.org/v1", calico.GroupV3: "projectcalico.org/v3"}
	laid := 0
	for round := 0; round < 120; round++ {
		s.Snapshot()
		peerChanged := false
		for n := rng.IntN(3); n >= 0; n-- {
			group := []string{calico.GroupCRD, calico.GroupV3}[rng.IntN(2)]
			switch rng.IntN(6) {
			case 0, 1, 2:
				name := fmt.Sprintf("peer-%d", rng.IntN(6))
				upsert(t, s, validatetest.Peer(name, selectors[rng.IntN(len(selectors))], selectors[rng.IntN(2)]), groups[group])
				peerChanged = true
			case 3:
				s.Delete(group, calico.KindBGPPeer, fmt.Sprintf("peer-%d", rng.IntN(6)))
				peerChanged = true
			case 4:
				upsert(t, s, validatetest.Config(rng.IntN(2) == 0), groups[group])
				peerChanged = true
			default:
				i := rng.IntN(layout.Nodes)
				o := validatetest.Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.1.0.%d", i%250), fmt.Sprintf("zone-%d", rng.IntN(3)), "")
				o.CoreNode.Labels["team"] = fmt.Sprint(rng.IntN(3))
				s.UpsertNode(o.CoreNode)
			}
		}
		got := s.Snapshot()
		if peerChanged && !s.rebuiltLast() {
			laid++
		}
		if g, w := auditLines(t.Context(), e, got), auditLines(t.Context(), e, s.rebuilt()); !slices.Equal(g, w) {
			t.Fatalf("round %d: laid-over snapshot audits\n%s\nrebuilt\n%s", round, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	if laid < 40 {
		t.Errorf("only %d rounds of BGPPeer or configuration changes were laid over the snapshot", laid)
	}
}

// TestRebuildInBackground: past maxDepth Nodes added the full build runs in the background,
// and a snapshot asked for in the meantime does not wait for it; when it is done, it becomes
// the snapshot with the Nodes changed meanwhile laid over it, and audits as a rebuild does.
func TestRebuildInBackground(t *testing.T) {
	layout := validatetest.Layout{Nodes: 60, Reflectors: 3}
	s := storeWith(t, validatetest.Generate(layout))
	s.Snapshot()
	started, release := make(chan struct{}, 1), make(chan struct{})
	s.mu.Lock()
	s.build = func(objs []*calico.Object) *model.Snapshot {
		started <- struct{}{}
		<-release
		return model.NewSnapshot(calico.NewState(objs))
	}
	s.mu.Unlock()
	relabel := func(i int) {
		o := validatetest.Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.1.0.%d", i), "zone-0", "")
		o.CoreNode.Labels["team"] = fmt.Sprint(i)
		s.UpsertNode(o.CoreNode)
	}
	go func() { // a build on the request path would block here
		for i := range maxDepth + 1 {
			relabel(layout.Nodes + i) // a new node
			s.Snapshot()
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no rebuild started past maxDepth Nodes added")
	}
	// The build waits for release: snapshots of further changes do not.
	done := make(chan *model.Snapshot)
	go func() {
		for !s.rebuiltLast() { // the first loop is done: its changes laid over
			s.mu.Lock()
			n := len(s.since)
			s.mu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		relabel(40)
		done <- s.Snapshot()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Snapshot waited for the background build")
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for !s.rebuiltLast() && time.Now().Before(deadline) {
		// Adopted: depth counts only the Node changed while it ran.
		s.mu.Lock()
		adopted := s.rebuild == nil && s.depth <= 1
		s.mu.Unlock()
		if adopted {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	depth, running := s.depth, s.rebuild != nil
	s.mu.Unlock()
	if running || depth > 1 {
		t.Fatalf("the background build was not adopted: depth %d, running %v", depth, running)
	}
	e := validate.New(validate.DefaultConfig())
	if g, w := auditLines(t.Context(), e, s.Snapshot()), auditLines(t.Context(), e, s.rebuilt()); !slices.Equal(g, w) {
		t.Fatalf("after the background build the snapshot audits\n%s\nrebuilt\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	if got := s.Snapshot().State.Node("node-00040").K8sLabels["team"]; got != "40" {
		t.Errorf("the Node changed during the build: team=%q, want 40", got)
	}
}

// TestFlattenKeepsTheAnalysis: past maxDepth Node changes that add or remove no Node, the
// snapshot is flattened, not built again: its analysis is the one the changes derived, its
// lookups walk no overlay, and it audits as a rebuild does.
func TestFlattenKeepsTheAnalysis(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	layout := validatetest.Layout{Nodes: 90, Reflectors: 6, Zones: 3}
	s := storeWith(t, validatetest.Generate(layout))
	s.Snapshot()
	builds := 0
	s.mu.Lock()
	s.build = func(objs []*calico.Object) *model.Snapshot {
		builds++
		return model.NewSnapshot(calico.NewState(objs))
	}
	s.mu.Unlock()
	e := validate.New(validate.DefaultConfig())
	flattened := 0
	for change := range 4 * maxDepth {
		i := rng.IntN(layout.Nodes)
		cid := ""
		if i < layout.Reflectors && rng.IntN(4) != 0 {
			cid = fmt.Sprintf("1.0.0.%d", i%3+1)
		}
		o := validatetest.Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.1.0.%d", i), fmt.Sprintf("zone-%d", i%3), cid)
		o.CoreNode.Labels["team"] = fmt.Sprint(rng.IntN(3))
		if rng.IntN(10) == 0 {
			delete(o.CoreNode.Annotations, calico.AnnotationIPv4Address)
		}
		s.UpsertNode(o.CoreNode)
		before := s.Snapshot()
		s.mu.Lock()
		depth := s.depth
		s.mu.Unlock()
		if depth > maxDepth {
			t.Fatalf("change %d: %d changes laid over the snapshot, want at most %d", change, depth, maxDepth)
		}
		if depth == 0 {
			flattened++
			if g, w := auditLines(t.Context(), e, before), auditLines(t.Context(), e, s.rebuilt()); !slices.Equal(g, w) {
				t.Fatalf("change %d: the flattened snapshot audits\n%s\nrebuilt\n%s", change, strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			if got := before.State.Node(o.Name); !reflect.DeepEqual(got, o.Node) {
				t.Fatalf("change %d: the flattened state holds %+v, want %+v", change, got, o.Node)
			}
		}
	}
	if builds != 0 {
		t.Errorf("%d full builds, want none: Node changes that add no Node are flattened", builds)
	}
	if flattened < 3 {
		t.Errorf("flattened %d times in %d changes, want 3", flattened, 4*maxDepth)
	}
}
