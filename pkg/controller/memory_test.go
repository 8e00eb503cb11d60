package controller

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestMemory: a reflector's blip shorter than --grace is nothing; a loss of --grace makes it
// lost until it has been fit for --settle; a client unfit or moved within --settle is not
// trusted; a deleted node is forgotten.
func TestMemory(t *testing.T) {
	m := &memory{grace: 3 * time.Second, settle: time.Minute, nodes: map[string]*seen{}}
	t0 := time.Unix(1_000_000, 0)
	view := func(zone, unfit string, reflector bool) plan.NodeView {
		return plan.NodeView{Zone: zone, Unfit: unfit, Reflector: reflector}
	}
	for _, tc := range []struct {
		at                 time.Duration
		views              map[string]plan.NodeView
		inGrace, unsettled []string
		wake               time.Duration
	}{
		{0, map[string]plan.NodeView{"r": view("a", "", true), "c": view("a", "", false)}, nil, nil, 0},
		{1 * time.Second, map[string]plan.NodeView{"r": view("a", "cordoned", true), "c": view("a", "NotReady", false)}, []string{"r"}, nil, 3 * time.Second},
		// A blip: the reflector is not lost; the client is not trusted for a minute.
		{2 * time.Second, map[string]plan.NodeView{"r": view("a", "", true), "c": view("a", "", false)}, nil, []string{"c"}, time.Minute},
		{5 * time.Second, map[string]plan.NodeView{"r": view("a", "cordoned", true), "c": view("a", "", false)}, []string{"r"}, []string{"c"}, 3 * time.Second},
		{7 * time.Second, map[string]plan.NodeView{"r": view("a", "cordoned", true), "c": view("a", "", false)}, []string{"r"}, []string{"c"}, 1 * time.Second},
		// Lost: no longer kept, and not trusted again for --settle after it comes back.
		{8 * time.Second, map[string]plan.NodeView{"r": view("a", "cordoned", true), "c": view("a", "", false)}, nil, []string{"c"}, 54 * time.Second},
		{9 * time.Second, map[string]plan.NodeView{"r": view("a", "", true), "c": view("a", "", false)}, nil, []string{"c", "r"}, 53 * time.Second},
		{62 * time.Second, map[string]plan.NodeView{"r": view("a", "", true), "c": view("a", "", false)}, nil, []string{"r"}, 7 * time.Second},
		{69 * time.Second, map[string]plan.NodeView{"r": view("a", "", true), "c": view("a", "", false)}, nil, nil, 0},
		// A reflector that moves zone is lost to both.
		{70 * time.Second, map[string]plan.NodeView{"r": view("b", "", true)}, nil, []string{"r"}, time.Minute},
	} {
		inGrace, unsettled, wake := m.observe(t0.Add(tc.at), tc.views)
		if got := slices.Sorted(maps.Keys(inGrace)); !slices.Equal(got, tc.inGrace) {
			t.Errorf("at %s: in grace %v, want %v", tc.at, got, tc.inGrace)
		}
		if got := slices.Sorted(maps.Keys(unsettled)); !slices.Equal(got, tc.unsettled) {
			t.Errorf("at %s: unsettled %v, want %v", tc.at, got, tc.unsettled)
		}
		if wake != tc.wake {
			t.Errorf("at %s: wake in %s, want %s", tc.at, wake, tc.wake)
		}
	}
	if _, ok := m.nodes["c"]; ok {
		t.Error("a deleted node is still remembered")
	}
}

var engine = validate.New(validate.Config{})

// sim is an in-memory cluster the controller's planning runs against, on a fake clock.
type sim struct {
	t    *testing.T
	objs []*calico.Object
}

// apply lays a step over the objects as the API server would.
func (s *sim) apply(st *plan.Step) {
	s.t.Helper()
	if st.Kind != calico.KindNode {
		o, err := calico.Decode(&unstructured.Unstructured{Object: st.Object})
		if err != nil {
			s.t.Fatal(err)
		}
		if i := slices.IndexFunc(s.objs, func(x *calico.Object) bool { return x.Kind == o.Kind && x.Name == o.Name }); i >= 0 {
			s.objs[i] = o
		} else {
			s.objs = append(s.objs, o)
		}
		return
	}
	s.edit(st.Name, func(k *corev1.Node) {
		if st.Operation == plan.OpApply {
			meta := st.Object["metadata"].(map[string]any)
			for key, v := range meta["labels"].(map[string]any) {
				k.Labels[key] = v.(string)
			}
			for key, v := range meta["annotations"].(map[string]any) {
				k.Annotations[key] = v.(string)
			}
			return
		}
		for _, l := range st.RemoveLabels {
			delete(k.Labels, l)
		}
		for _, a := range st.RemoveAnnotations {
			delete(k.Annotations, a)
		}
	})
}

func (s *sim) edit(name string, mod func(k *corev1.Node)) {
	i := slices.IndexFunc(s.objs, func(o *calico.Object) bool { return o.Name == name && o.CoreNode != nil })
	k := s.objs[i].CoreNode.DeepCopy()
	mod(k)
	s.objs[i] = calico.NodeObject(k)
}

func (s *sim) reflectors(zone string) []string {
	var out []string
	for _, o := range s.objs {
		if o.Node != nil && o.Node.ClusterID != "" && o.Node.Labels()["topology.kubernetes.io/zone"] == zone {
			out = append(out, o.Name)
		}
	}
	return out
}

// designed is 30 nodes in zones a, b, c with the mesh off on 2 reflectors per zone.
func designed(t *testing.T, opts plan.Options) *sim {
	s := &sim{t: t}
	for i := 0; i < 30; i++ {
		s.objs = append(s.objs, validatetest.Node(fmt.Sprintf("node-%02d", i), fmt.Sprintf("10.0.0.%d", i+1), string(rune('a'+i%3)), ""))
	}
	p, err := plan.Make(t.Context(), engine, calico.NewState(s.objs), plan.CoreNodes(s.objs), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Steps {
		s.apply(st)
	}
	return s
}

// flap says, second by second, whether a flapping node is in its bad phase.
type flap struct {
	node         string
	from, period int
	bad          int // the first bad seconds of each period
	mod, restore func(k *corev1.Node)
}

func cordoned(k *corev1.Node)   { k.Spec.Unschedulable = true }
func uncordoned(k *corev1.Node) { k.Spec.Unschedulable = false }
func down(k *corev1.Node)       { k.Status.Conditions[0].Status = corev1.ConditionFalse }
func up(k *corev1.Node)         { k.Status.Conditions[0].Status = corev1.ConditionTrue }
func spot(k *corev1.Node)       { k.Labels["lifecycle"] = "spot" }
func onDemand(k *corev1.Node)   { delete(k.Labels, "lifecycle") }

// run plays the flaps for so many seconds against the controller's planning (one look per
// second, a write when the cool-down allows) and returns the writes (by second) and the most
// reflectors zone c had.
func (s *sim) run(r *Reconciler, flaps []flap, seconds int) (writes []int, most int) {
	s.t.Helper()
	clock := time.Unix(1_000_000, 0)
	r.now = func() time.Time { return clock }
	r.init()
	var last time.Time
	for sec := 0; sec < seconds; sec++ {
		clock = time.Unix(1_000_000, 0).Add(time.Duration(sec) * time.Second)
		for _, f := range flaps {
			if sec >= f.from {
				if (sec-f.from)%f.period < f.bad {
					s.edit(f.node, f.mod)
				} else {
					s.edit(f.node, f.restore)
				}
			}
		}
		p, _, err := r.look(s.t.Context(), calico.NewState(s.objs), plan.CoreNodes(s.objs))
		if err != nil {
			s.t.Fatalf("second %d: %v", sec, err)
		}
		if len(p.Steps) > 0 && (last.IsZero() || clock.Sub(last) >= r.Opts.CoolDown) {
			s.apply(p.Steps[0])
			last = clock
			writes = append(writes, sec)
		}
		most = max(most, len(s.reflectors("c")))
	}
	return writes, most
}

// TestFlappingMovesLittle is the probe's case: nodes of zone c flap (cordon, readiness, the
// label --exclude selects) every few seconds, faster than a person can follow but slower than
// --grace. Each flapping reflector is replaced once, no flapping node is made a reflector, zone
// c never has more than --max-per-zone reflectors, and after the first minute nothing moves.
func TestFlappingMovesLittle(t *testing.T) {
	opts := plan.Options{Exclude: "lifecycle == 'spot'"}
	flaps := []flap{
		{node: "node-02", from: 5, period: 7, bad: 4, mod: cordoned, restore: uncordoned}, // a reflector of zone c
		{node: "node-05", from: 20, period: 9, bad: 5, mod: down, restore: up},            // the other one
		{node: "node-08", from: 0, period: 6, bad: 3, mod: spot, restore: onDemand},       // zone c's first candidate
		{node: "node-11", from: 3, period: 5, bad: 2, mod: cordoned, restore: uncordoned},
		{node: "node-14", from: 1, period: 8, bad: 4, mod: down, restore: up},
	}
	s := designed(t, opts)
	if rr := s.reflectors("c"); !slices.Equal(rr, []string{"node-02", "node-05"}) {
		t.Fatalf("zone c starts with reflectors %v", rr)
	}
	r := &Reconciler{Engine: engine, Opts: Options{Plan: opts, Grace: 3 * time.Second, Settle: 2 * time.Minute, CoolDown: 2 * time.Second}}
	writes, most := s.run(r, flaps, 180)
	t.Logf("with --settle 2m: %d writes at seconds %v, zone c at most %d reflectors, ending with %v", len(writes), writes, most, s.reflectors("c"))
	if len(writes) > 4 {
		t.Errorf("%d writes at seconds %v: want at most 4 (each flapping reflector replaced, then retired, once)", len(writes), writes)
	}
	if len(writes) > 0 && writes[len(writes)-1] >= 60 {
		t.Errorf("writes at seconds %v: still moving reflectors after the first minute", writes)
	}
	if most > 5 {
		t.Errorf("zone c had %d reflectors, --max-per-zone is 5", most)
	}
	rr := s.reflectors("c")
	for _, f := range flaps {
		if slices.Contains(rr, f.node) {
			t.Errorf("flapping %s is a reflector of zone c at the end: %v", f.node, rr)
		}
	}
	if len(rr) != 2 {
		t.Errorf("zone c ends with reflectors %v, want 2", rr)
	}

	// For the record: without --settle, the same flaps keep moving reflectors.
	s = designed(t, opts)
	r = &Reconciler{Engine: engine, Opts: Options{Plan: opts, Grace: 3 * time.Second, CoolDown: 2 * time.Second}}
	writes, most = s.run(r, flaps, 180)
	t.Logf("without --settle: %d writes, zone c at most %d reflectors", len(writes), most)
	if most > 5 {
		t.Errorf("without --settle zone c had %d reflectors, --max-per-zone is 5", most)
	}
}
