package plan_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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

var engine = validate.New(validate.Config{})

func makePlan(t testing.TB, objs []*calico.Object, o plan.Options) (*plan.Plan, error) {
	t.Helper()
	return plan.Make(t.Context(), engine, calico.NewState(objs), plan.CoreNodes(objs), o)
}

// applyStep lays a step over the objects the way the API server would: a server-side apply of
// a core Node's label and annotation merges them into the node, a removal deletes them, a
// Calico object replaces the one of its name. It returns the objects after the step and the
// admission request the API server would send for it.
func applyStep(t *testing.T, objs []*calico.Object, s *plan.Step) ([]*calico.Object, *admissionv1.AdmissionRequest) {
	t.Helper()
	req := &admissionv1.AdmissionRequest{UID: "test", Name: s.Name, Operation: admissionv1.Create,
		Kind: metav1.GroupVersionKind{Group: s.Group, Version: s.Version, Kind: s.Kind}}
	out := slices.Clone(objs)
	i := slices.IndexFunc(out, func(o *calico.Object) bool { return o.Kind == s.Kind && o.Name == s.Name })
	var next *calico.Object
	if s.Kind == calico.KindNode {
		if i < 0 {
			t.Fatalf("step %d: node %s does not exist", s.Number, s.Name)
		}
		k := out[i].CoreNode.DeepCopy()
		if s.Operation == plan.OpApply {
			meta := s.Object["metadata"].(map[string]any)
			for key, v := range meta["labels"].(map[string]any) {
				k.Labels[key] = v.(string)
			}
			for key, v := range meta["annotations"].(map[string]any) {
				k.Annotations[key] = v.(string)
			}
		} else {
			for _, l := range s.RemoveLabels {
				delete(k.Labels, l)
			}
			for _, a := range s.RemoveAnnotations {
				delete(k.Annotations, a)
			}
			maps.Copy(k.Annotations, s.SetAnnotations)
		}
		next = calico.NodeObject(k)
	} else {
		var err error
		next, err = calico.Decode(&unstructured.Unstructured{Object: s.Object})
		if err != nil {
			t.Fatalf("step %d: %v", s.Number, err)
		}
	}
	raw := func(o *calico.Object) []byte {
		var v any = o.CoreNode
		switch {
		case o.Peer != nil:
			p := o.Peer.DeepCopy()
			p.APIVersion, p.Kind = s.Group+"/"+s.Version, s.Kind
			v = p
		case o.Config != nil:
			c := o.Config.DeepCopy()
			c.APIVersion, c.Kind = s.Group+"/"+s.Version, s.Kind
			v = c
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req.Object = runtime.RawExtension{Raw: raw(next)}
	if i >= 0 {
		req.Operation = admissionv1.Update
		req.OldObject = runtime.RawExtension{Raw: raw(out[i])}
		out[i] = next
	} else {
		out = append(out, next)
	}
	return out, req
}

// replay plays every step of a plan on its own, outside the planner, as the webhook would
// judge it; it fails on a refusal, a warning other than allowed, or a deny-level finding in
// the state after any step, and returns the final objects.
func replay(t *testing.T, objs []*calico.Object, p *plan.Plan, allowed func(step int, warning string) bool) []*calico.Object {
	t.Helper()
	return replayKeeping(t, objs, p, allowed, nil)
}

// replayKeeping is replay for a plan that leaves a zone as it is: a deny-level finding the
// starting state already had (same rule and object) may stay in the states after its steps.
func replayKeeping(t *testing.T, objs []*calico.Object, p *plan.Plan, allowed func(step int, warning string) bool, kept map[string]bool) []*calico.Object {
	t.Helper()
	reviewer := &admission.Reviewer{Engine: engine}
	for _, s := range p.Steps {
		before := model.NewSnapshot(calico.NewState(objs))
		var req *admissionv1.AdmissionRequest
		objs, req = applyStep(t, objs, s)
		resp := reviewer.Review(t.Context(), req, before)
		if !resp.Allowed {
			t.Fatalf("step %d (%s) refused: %v", s.Number, s.Summary, resp.Result.Message)
		}
		for _, w := range resp.Warnings {
			if !allowed(s.Number, w) {
				t.Errorf("step %d (%s) warns: %s", s.Number, s.Summary, w)
			}
		}
		if len(resp.Patch) > 0 {
			t.Errorf("step %d (%s): the webhook would patch it (%s): the plan should write what the mutation adds", s.Number, s.Summary, resp.Patch)
		}
		for _, f := range engine.Audit(t.Context(), model.NewSnapshot(calico.NewState(objs))) {
			if f.Action == validate.Deny && !kept[f.Rule+"|"+f.Object.Kind+"|"+f.Object.Name] {
				t.Errorf("after step %d (%s): [%s] %s", s.Number, s.Summary, f.Rule, f.Message)
			}
		}
	}
	return objs
}

// denied returns the deny-level findings of a state by rule and object.
func denied(t *testing.T, objs []*calico.Object) map[string]bool {
	out := map[string]bool{}
	for _, f := range engine.Audit(t.Context(), model.NewSnapshot(calico.NewState(objs))) {
		if f.Action == validate.Deny {
			out[f.Rule+"|"+f.Object.Kind+"|"+f.Object.Name] = true
		}
	}
	return out
}

// onlyFirstPeerSelectsNothing allows the one warning of a migration from the mesh: the first
// BGPPeer selects the reflectors before any node is one.
func onlyFirstPeerSelectsNothing(step int, w string) bool {
	return step == 1 && strings.HasPrefix(w, "[selector-matches-nothing] BGPPeer "+plan.ReflectorsPeer)
}

func noWarning(int, string) bool { return false }

func reflectorsByZone(objs []*calico.Object) map[string][]string {
	out := map[string][]string{}
	for _, o := range objs {
		if o.Node != nil && o.Node.ClusterID != "" {
			z := o.Node.Labels()["topology.kubernetes.io/zone"]
			out[z] = append(out[z], o.Name)
		}
	}
	return out
}

func TestMigrationFromMesh(t *testing.T) {
	objs := cluster(30, "a", "b", "c")
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, s := range p.Steps {
		if len(phases) == 0 || phases[len(phases)-1] != s.Phase {
			phases = append(phases, s.Phase)
		}
	}
	// Make before break: every node peers with the reflectors, then they become reflectors,
	// the zones' clients peer, the mesh goes, and the reflector peering narrows.
	if want := []string{plan.PhasePeer, plan.PhaseReflector, plan.PhasePeer, plan.PhaseMesh, plan.PhasePeer}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
	final := replay(t, objs, p, onlyFirstPeerSelectsNothing)
	state := calico.NewState(final)
	if state.Mesh() {
		t.Error("the mesh is still on at the end")
	}
	for _, f := range engine.Audit(t.Context(), model.NewSnapshot(state)) {
		t.Errorf("final state: [%s] %s %s", f.Action, f.Rule, f.Message)
	}
	rr := reflectorsByZone(final)
	for _, z := range []string{"a", "b", "c"} {
		if len(rr[z]) < 2 {
			t.Errorf("zone %s has reflectors %v, want at least 2", z, rr[z])
		}
	}
	// O(zones) BGPPeers: one per zone and one for the reflectors.
	if n := len(state.PeerNames()); n != 4 {
		t.Errorf("%d BGPPeers %v, want 4", n, state.PeerNames())
	}
}

func TestPlanIsStableAndResumable(t *testing.T) {
	objs := cluster(60, "a", "b", "c")
	p1, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(objs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	p2, err := makePlan(t, shuffled, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(p1)
	j2, _ := json.Marshal(p2)
	if string(j1) != string(j2) {
		t.Errorf("the same cluster in another order gives another plan:\n%s\n%s", j1, j2)
	}
	// Stop half-way, plan again: the rest of the steps, not the ones done.
	half := slices.Clone(objs)
	for _, s := range p1.Steps[:5] {
		half, _ = applyStep(t, half, s)
	}
	p3, err := makePlan(t, half, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.Steps) != len(p1.Steps)-5 {
		t.Fatalf("resumed plan has %d steps, want %d", len(p3.Steps), len(p1.Steps)-5)
	}
	for i, s := range p3.Steps {
		if s.Summary != p1.Steps[i+5].Summary {
			t.Errorf("resumed step %d: %q, want %q", i+1, s.Summary, p1.Steps[i+5].Summary)
		}
	}
	final := replay(t, half, p3, noWarning)
	if p4, err := makePlan(t, final, plan.Options{}); err != nil || len(p4.Steps) != 0 {
		t.Errorf("planning the planned design again: %v steps, %v; want nothing to do", stepsOf(p4), err)
	}
}

func stepsOf(p *plan.Plan) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Summary)
	}
	return out
}

// planned is the final state of the 30-node migration.
func planned(t *testing.T) []*calico.Object {
	objs := cluster(30, "a", "b", "c")
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return replay(t, objs, p, onlyFirstPeerSelectsNothing)
}

func TestReplacement(t *testing.T) {
	for name, breakIt := range map[string]func(objs []*calico.Object, i int) []*calico.Object{
		"NotReady": func(objs []*calico.Object, i int) []*calico.Object {
			k := objs[i].CoreNode.DeepCopy()
			k.Status.Conditions[0].Status = corev1.ConditionFalse
			objs[i] = calico.NodeObject(k)
			return objs
		},
		"cordoned": func(objs []*calico.Object, i int) []*calico.Object {
			k := objs[i].CoreNode.DeepCopy()
			k.Spec.Unschedulable = true
			objs[i] = calico.NodeObject(k)
			return objs
		},
		"deleted": func(objs []*calico.Object, i int) []*calico.Object { return slices.Delete(objs, i, i+1) },
	} {
		t.Run(name, func(t *testing.T) {
			objs := slices.Clone(planned(t))
			lost := reflectorsByZone(objs)["b"][0]
			objs = breakIt(objs, slices.IndexFunc(objs, func(o *calico.Object) bool { return o.Name == lost }))
			p, err := makePlan(t, objs, plan.Options{})
			if err != nil {
				t.Fatal(err)
			}
			added, retired := -1, -1
			for _, s := range p.Steps {
				switch {
				case s.Phase == plan.PhaseReflector && added < 0:
					added = s.Number
					if !strings.Contains(s.Summary, "zone b") {
						t.Errorf("replacement %q is not in zone b", s.Summary)
					}
				case s.Phase == plan.PhaseRetire:
					retired = s.Number
					if s.Name != lost {
						t.Errorf("retires %s, want %s", s.Name, lost)
					}
				}
			}
			if added < 0 {
				t.Fatalf("no replacement in %v", stepsOf(p))
			}
			if name == "deleted" {
				if retired >= 0 {
					t.Errorf("retires a deleted node: %v", stepsOf(p))
				}
			} else if retired < added {
				t.Errorf("retires (step %d) before the replacement is in place (step %d): %v", retired, added, stepsOf(p))
			}
			final := replay(t, objs, p, noWarning)
			rr := reflectorsByZone(final)
			if len(rr["b"]) != 2 || slices.Contains(rr["b"], lost) {
				t.Errorf("zone b's reflectors after the replacement: %v", rr["b"])
			}
			for _, f := range engine.Audit(t.Context(), model.NewSnapshot(calico.NewState(final))) {
				t.Errorf("after the replacement: [%s] %s %s", f.Action, f.Rule, f.Message)
			}
		})
	}
}

// TestRetireCalicoLabel: calicoctl keeps a node's labels in projectcalico.org/labels; a
// reflector labelled that way loses the label there when it retires.
func TestRetireCalicoLabel(t *testing.T) {
	objs := slices.Clone(planned(t))
	i := slices.IndexFunc(objs, func(o *calico.Object) bool { return o.Name == "node-001" })
	k := objs[i].CoreNode.DeepCopy()
	delete(k.Labels, "route-reflector")
	k.Annotations[calico.AnnotationLabels] = `{"rack":"r1","route-reflector":"true"}`
	k.Status.Conditions[0].Status = corev1.ConditionFalse
	objs[i] = calico.NodeObject(k)
	p, err := makePlan(t, objs, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	final := replay(t, objs, p, noWarning)
	n := final[slices.IndexFunc(final, func(o *calico.Object) bool { return o.Name == "node-001" })].Node
	if _, ok := n.Labels()["route-reflector"]; ok || n.ClusterID != "" || n.Labels()["rack"] != "r1" {
		t.Errorf("node-001 after its retirement: labels %v, cluster ID %q", n.Labels(), n.ClusterID)
	}
}

func TestKnobs(t *testing.T) {
	tests := map[string]struct {
		objs  []*calico.Object
		opts  plan.Options
		check func(t *testing.T, p *plan.Plan)
	}{
		"clients per reflector scales a zone out, max per zone caps it": {
			objs: cluster(900, "a", "b", "c"), opts: plan.Options{ClientsPerReflector: 100, MaxPerZone: 4},
			check: func(t *testing.T, p *plan.Plan) {
				for _, z := range p.Zones {
					if len(z.Reflectors) != 3 {
						t.Errorf("zone %s: %d reflectors, want 3 (300 nodes / 100)", z.Name, len(z.Reflectors))
					}
				}
			},
		},
		"max per zone": {
			objs: cluster(900, "a", "b", "c"), opts: plan.Options{ClientsPerReflector: 10, MaxPerZone: 4},
			check: func(t *testing.T, p *plan.Plan) {
				for _, z := range p.Zones {
					if len(z.Reflectors) != 4 {
						t.Errorf("zone %s: %d reflectors, want the cap of 4", z.Name, len(z.Reflectors))
					}
				}
			},
		},
		"prefer and exclude": {
			objs: withLabel(cluster(30, "a", "b", "c"), map[string]string{"node-020": "infra", "node-023": "infra", "node-000": "spot", "node-003": "spot"}),
			opts: plan.Options{Prefer: "role == 'infra'", Exclude: "role == 'spot'"},
			check: func(t *testing.T, p *plan.Plan) {
				got := reflectorNames(p, "c")
				if !slices.Equal(got, []string{"node-020", "node-023"}) {
					t.Errorf("zone c: %v, want the infra nodes", got)
				}
				if got := reflectorNames(p, "a"); slices.Contains(got, "node-000") || slices.Contains(got, "node-003") {
					t.Errorf("zone a picks spot nodes: %v", got)
				}
			},
		},
		"eligible": {
			objs: withLabel(cluster(30, "a", "b", "c"), map[string]string{"node-027": "rr", "node-024": "rr", "node-025": "rr", "node-028": "rr", "node-026": "rr", "node-029": "rr"}),
			opts: plan.Options{Eligible: "role == 'rr'"},
			check: func(t *testing.T, p *plan.Plan) {
				if got := reflectorNames(p, "a"); !slices.Equal(got, []string{"node-024", "node-027"}) {
					t.Errorf("zone a: %v", got)
				}
			},
		},
		"unique cluster IDs": {
			objs: cluster(30, "a", "b", "c"), opts: plan.Options{ClusterIDs: plan.ClusterIDsUnique},
			check: func(t *testing.T, p *plan.Plan) {
				ids := map[string]bool{}
				for _, z := range p.Zones {
					for _, r := range z.Reflectors {
						if ids[r.ClusterID] {
							t.Errorf("cluster ID %s twice", r.ClusterID)
						}
						ids[r.ClusterID] = true
					}
				}
			},
		},
		"a zone with one eligible node falls back to another zone's reflectors": {
			objs: withLabel(cluster(30, "a", "b", "c"), map[string]string{"node-002": "rr", "node-000": "rr", "node-003": "rr", "node-001": "rr", "node-004": "rr"}),
			opts: plan.Options{Eligible: "role == 'rr'"},
			check: func(t *testing.T, p *plan.Plan) {
				for _, z := range p.Zones {
					if z.Name == "c" && (len(z.Reflectors) != 1 || len(z.Fallback) == 0) {
						t.Errorf("zone c: reflectors %v, fallback %v", z.Reflectors, z.Fallback)
					}
				}
			},
		},
		"no zone label": {
			objs: cluster(10, ""), opts: plan.Options{},
			check: func(t *testing.T, p *plan.Plan) {
				if len(p.Zones) != 1 || len(p.Zones[0].Reflectors) != 2 {
					t.Errorf("zones %+v", p.Zones)
				}
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := makePlan(t, tt.objs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
			final := replay(t, tt.objs, p, onlyFirstPeerSelectsNothing)
			for _, f := range engine.Audit(t.Context(), model.NewSnapshot(calico.NewState(final))) {
				if f.Action == validate.Deny {
					t.Errorf("final state: %s %s", f.Rule, f.Message)
				}
			}
		})
	}
}

func withLabel(objs []*calico.Object, roles map[string]string) []*calico.Object {
	out := slices.Clone(objs)
	for i, o := range out {
		if role, ok := roles[o.Name]; ok {
			k := o.CoreNode.DeepCopy()
			k.Labels = maps.Clone(k.Labels)
			k.Labels["role"] = role
			out[i] = calico.NodeObject(k)
		}
	}
	return out
}

func withAS(objs []*calico.Object, name, as string) []*calico.Object {
	out := slices.Clone(objs)
	for i, o := range out {
		if o.Name == name {
			k := o.CoreNode.DeepCopy()
			k.Annotations[calico.AnnotationASNumber] = as
			out[i] = calico.NodeObject(k)
		}
	}
	return out
}

func reflectorNames(p *plan.Plan, zone string) []string {
	var out []string
	for _, z := range p.Zones {
		if z.Name == zone {
			for _, r := range z.Reflectors {
				out = append(out, r.Node)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestHostileInput(t *testing.T) {
	notReady := func(objs []*calico.Object) []*calico.Object {
		for i, o := range objs {
			k := o.CoreNode.DeepCopy()
			k.Status.Conditions[0].Status = corev1.ConditionUnknown
			objs[i] = calico.NodeObject(k)
		}
		return objs
	}
	tests := map[string]struct {
		objs []*calico.Object
		opts plan.Options
		want string
	}{
		"single node":                  {objs: cluster(1, "a"), want: "only 1 node(s) take part in BGP"},
		"every node NotReady":          {objs: notReady(cluster(9, "a", "b", "c")), want: "none of the 9 nodes is Ready"},
		"no eligible node in a zone":   {objs: cluster(30, "a", "b", "c"), opts: plan.Options{Exclude: "topology.kubernetes.io/zone == 'c'"}, want: "zone c has 10 node(s) but none can be a reflector (10 excluded (--exclude))"},
		"mesh already off and broken":  {objs: append(cluster(9, "a", "b", "c"), meshOff()), want: "the node-to-node mesh is off and nodes already miss routes"},
		"fewer eligible than required": {objs: cluster(30, "a", "b", "c"), opts: plan.Options{Eligible: "kubernetes.io/hostname == 'node-000'"}, want: "none can be a reflector"},
		"zone label per host":          {objs: cluster(200, "a"), opts: plan.Options{ZoneLabel: "kubernetes.io/hostname"}, want: "gives 200 zones"},
		"a node in another AS":         {objs: withAS(cluster(9, "a", "b", "c"), "node-004", "65001"), want: "node node-004 speaks AS 65001 but the plan is for AS 64512"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := makePlan(t, tt.objs, tt.opts)
			var inf *plan.Infeasible
			if !errorAs(err, &inf) {
				t.Fatalf("got plan %v, error %v; want no safe plan", stepsOf(p), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestBadKnobs(t *testing.T) {
	for name, o := range map[string]plan.Options{
		"one reflector per zone": {ReflectorsPerZone: 1},
		"max below min":          {ReflectorsPerZone: 3, MaxPerZone: 2},
		"cluster id scheme":      {ClusterIDs: "per-node"},
		"selector":               {Prefer: "has(role"},
		"zone label":             {ZoneLabel: "zone label"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := makePlan(t, cluster(9, "a"), o)
			var use *plan.UsageError
			if !errorAs(err, &use) {
				t.Fatalf("error %v, want a usage error", err)
			}
		})
	}
}
