package validate

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// topologyRules are the rules about what a change does to routes and reflectors.
var topologyRules = []string{RuleRoutePropagation, RuleReflectorRedundancy, RuleReflectorRemoval, RuleClusterIDConsistency, RuleMeshDisable}

// randomBroken is a small cluster, often broken: reflectors of one or two cluster IDs, client
// peerings by zone, some peers that shadow a client's session with a reflector (a node-scoped
// peerIP peer that sorts first, with a localASNumber the reflector refuses), the mesh off.
func randomBroken(rng *rand.Rand) []*calico.Object {
	var out []*calico.Object
	n := 4 + rng.Intn(5)
	var rrs []int
	for i := 0; i < n; i++ {
		name, ip := fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.0.%d", i+1)
		opts := []nodeOpt{label("zone", []string{"a", "b"}[rng.Intn(2)])}
		if i < 2 || rng.Intn(4) == 0 {
			rrs = append(rrs, i)
			opts = append(opts, clusterID([]string{"1.0.0.1", "1.0.0.2"}[rng.Intn(2)]), label("route-reflector", "true"))
		}
		out = append(out, node(name, ip, opts...))
	}
	peers := []*calico.Object{
		selPeer("clients", "!has(route-reflector)", "has(route-reflector)"),
		selPeer("reflectors", "has(route-reflector)", "has(route-reflector)"),
		selPeer("zone-a", "zone == 'a' && !has(route-reflector)", "zone == 'a' && has(route-reflector)"),
	}
	for _, p := range peers {
		if rng.Intn(3) > 0 {
			out = append(out, p)
		}
	}
	for k := 0; k < rng.Intn(4); k++ {
		out = append(out, shadow(fmt.Sprintf("n%d", rng.Intn(n)), fmt.Sprintf("10.0.0.%d", rrs[rng.Intn(len(rrs))]+1), k))
	}
	return append(out, mesh(rng.Intn(6) == 0))
}

// shadow claims node's session with the reflector at ip first (its name sorts before the
// client peerings) with a localASNumber the reflector refuses: the session stays down.
func shadow(node, ip string, k int) *calico.Object {
	return bgpPeer(fmt.Sprintf("a-shadow-%d", k), apiv3.BGPPeerSpec{Node: node, PeerIP: ip, ASNumber: 64512, LocalASNumber: asn(65009)})
}

// randomRepair is a change to a random broken cluster: peers deleted or created, shadows
// removed, labels and cluster IDs changed.
func randomRepair(rng *rand.Rand, state []*calico.Object) model.Change {
	var peers, nodes []*calico.Object
	for _, o := range state {
		switch {
		case o.Peer != nil:
			peers = append(peers, o)
		case o.Node != nil:
			nodes = append(nodes, o)
		}
	}
	switch r := rng.Intn(5); {
	case r == 0 && len(peers) > 0:
		return model.Change{Operation: model.Delete, Old: peers[rng.Intn(len(peers))]}
	case r == 1:
		p := []*calico.Object{selPeer("clients", "!has(route-reflector)", "has(route-reflector)"), selPeer("reflectors", "has(route-reflector)", "has(route-reflector)"),
			selPeer("zone-b", "zone == 'b' && !has(route-reflector)", "zone == 'b' && has(route-reflector)")}[rng.Intn(3)]
		for _, q := range peers {
			if q.Name == p.Name {
				return model.Change{Operation: model.Update, Old: q, Object: p}
			}
		}
		return model.Change{Operation: model.Create, Object: p}
	case r == 2:
		return model.Change{Operation: model.Create, Object: shadow(nodes[rng.Intn(len(nodes))].Name, fmt.Sprintf("10.0.0.%d", 1+rng.Intn(len(nodes))), 9)}
	default:
		old := nodes[rng.Intn(len(nodes))]
		k := old.CoreNode.DeepCopy()
		switch rng.Intn(3) {
		case 0:
			k.Labels["zone"] = []string{"a", "b"}[rng.Intn(2)]
		case 1:
			delete(k.Annotations, calico.AnnotationClusterID)
			delete(k.Labels, "route-reflector")
		default:
			k.Annotations[calico.AnnotationClusterID] = "1.0.0.1"
			k.Labels["route-reflector"] = "true"
		}
		return model.Change{Operation: model.Update, Old: old, Object: calico.NodeObject(k)}
	}
}

// worseOff says, by brute force on whole analyses, how a change leaves some node worse off
// ("" when none is): a node pair whose routes flowed stops learning them, a client loses a
// reflector it had a working session with, a reflector becomes the one path of routes that had
// another, a node new to BGP, or the mesh switched.
func worseOff(before, after *model.Snapshot) string {
	if before.State.Mesh() != after.State.Mesh() {
		return "mesh switched"
	}
	b, a := before.Analysis, after.Analysis
	var names []string
	for _, n := range after.Topology.Nodes {
		if a.Class(n.Name) >= 0 {
			if b.Class(n.Name) < 0 {
				return n.Name + " new to BGP"
			}
			names = append(names, n.Name)
		}
	}
	for _, x := range names {
		for _, y := range names {
			if x != y && b.Learns(x, y) && !a.Learns(x, y) {
				return x + "->" + y + " lost"
			}
		}
		if c := a.Class(x); a.Classes[c].ClusterID == "" {
			for _, r := range b.ReflectorsOf(b.Class(x)) {
				if !slices.Contains(a.ReflectorsOf(c), r) {
					return x + " lost reflector " + r
				}
			}
		}
	}
	// Single points: pairs that flow and survive any one reflector's loss before, but not
	// after.
	single := func(s *model.Snapshot) map[string]bool {
		out := map[string]bool{}
		for i, n := range s.Topology.Nodes {
			if !n.IsReflector() || s.Analysis.Class(n.Name) < 0 {
				continue
			}
			t := *s.Topology
			t.Nodes = slices.Clone(t.Nodes)
			down := *n
			down.Ready = false
			t.Nodes[i] = &down
			w := bgp.Analyze(&t)
			for _, x := range names {
				for _, y := range names {
					if x != y && x != n.Name && y != n.Name && s.Analysis.Learns(x, y) && !w.Learns(x, y) {
						out[x+"->"+y] = true
					}
				}
			}
		}
		return out
	}
	if after.State.Mesh() || e0.cfg.MinReflectors < 2 {
		return ""
	}
	was := single(before)
	for p := range single(after) {
		if !was[p] {
			return p + " newly depends on one reflector"
		}
	}
	return ""
}

var e0 = New(Config{})

// TestMonotoneAdmission: a change that leaves every node at least as well off is never
// refused, however broken the cluster; a change that cuts a node pair off always is.
func TestMonotoneAdmission(t *testing.T) {
	rng := rand.New(rand.NewSource(25))
	allowed, refused := 0, 0
	for iter := 0; iter < 1500; iter++ {
		state := randomBroken(rng)
		ch := randomRepair(rng, state)
		before := model.NewSnapshot(calico.NewState(state))
		after := before.After(ch)
		why := worseOff(before, after)
		var denied []Finding
		for _, f := range e0.Evaluate(t.Context(), ch, before) {
			if f.Action == Deny && slices.Contains(topologyRules, f.Rule) {
				denied = append(denied, f)
			}
		}
		// A reflector left without sessions while the mesh is on is the migration's middle
		// step (or its rollback): reflector-without-peers warns about it.
		alone := func(name string) bool {
			c := after.Analysis.Class(name)
			return c >= 0 && isolatedReflector(after, c)
		}
		lost := ""
		for _, x := range after.Topology.Nodes {
			for _, y := range after.Topology.Nodes {
				if x != y && before.Analysis.Learns(x.Name, y.Name) && after.Analysis.Class(x.Name) >= 0 && after.Analysis.Class(y.Name) >= 0 && !after.Analysis.Learns(x.Name, y.Name) && !alone(x.Name) && !alone(y.Name) {
					lost = x.Name + "->" + y.Name
				}
			}
		}
		switch {
		case why == "" && len(denied) > 0:
			t.Fatalf("iteration %d: no node is worse off, yet refused:\n%schange %s %s\nstate %s", iter, dump(denied), ch.Operation, ch.Target().Ref(), describeState(before))
		case lost != "" && len(denied) == 0:
			t.Fatalf("iteration %d: %s loses routes, yet allowed\nchange %s %s\nstate %s", iter, lost, ch.Operation, ch.Target().Ref(), describeState(before))
		case why == "":
			allowed++
		case len(denied) > 0:
			refused++
		}
	}
	if allowed < 300 || refused < 300 {
		t.Errorf("%d repairs allowed, %d harmful changes refused: the generator should give both", allowed, refused)
	}
}

func describeState(s *model.Snapshot) string {
	out := fmt.Sprintf("mesh=%v\n", s.State.Mesh())
	for _, n := range s.Topology.Nodes {
		out += fmt.Sprintf("  node %s %s cid=%q labels=%v\n", n.Name, n.IPv4, n.ClusterID, n.Labels)
	}
	for _, name := range s.State.PeerNames() {
		out += fmt.Sprintf("  peer %s %+v\n", name, s.State.Peer(name).Spec)
	}
	return out
}

// TestRepairOfAShadowedClient is the probe's case: a burst of peers cut a client off (each
// shadows one of its reflector sessions); removing one of them gives it one reflector back.
// That partial repair is allowed, with what is still wrong said as a warning.
func TestRepairOfAShadowedClient(t *testing.T) {
	state := with(seed(), shadow("c1", "10.0.0.1", 1), shadow("c1", "10.0.0.2", 2))
	before := model.NewSnapshot(calico.NewState(state))
	if !before.Analysis.Isolated(before.Analysis.Class("c1")) {
		t.Fatal("c1 should be cut off by the two shadowing peers")
	}
	got := e0.Evaluate(t.Context(), model.Change{Operation: model.Delete, Old: shadow("c1", "10.0.0.1", 1)}, before)
	warned := false
	for _, f := range got {
		if f.Action == Deny {
			t.Errorf("the repair is refused: %s %s: %s", f.Rule, f.Object, f.Message)
		}
		warned = warned || (f.Action == Warn && f.Rule == RuleReflectorRedundancy)
	}
	if !warned {
		t.Errorf("the remaining problem (c1 on one reflector) is not warned about:\n%s", dump(got))
	}
	// Patching the shadow's localASNumber away repairs it too.
	fixed := shadow("c1", "10.0.0.1", 1)
	p := *fixed.Peer
	p.Spec.LocalASNumber = nil
	p.Spec.ASNumber = numorstring.ASNumber(0)
	fixed = &calico.Object{Kind: fixed.Kind, Group: fixed.Group, Name: fixed.Name, Peer: &p}
	for _, f := range e0.Evaluate(t.Context(), model.Change{Operation: model.Update, Old: shadow("c1", "10.0.0.1", 1), Object: fixed}, before) {
		if f.Action == Deny && slices.Contains(topologyRules, f.Rule) {
			t.Errorf("patching the shadow is refused: %s %s: %s", f.Rule, f.Object, f.Message)
		}
	}
}
