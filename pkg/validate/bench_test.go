package validate_test

import (
	"fmt"
	"maps"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

var layouts = []struct {
	name string
	l    validatetest.Layout
}{
	{"500-nodes-2-rr", validatetest.Layout{Nodes: 500, Reflectors: 2}},
	{"5000-nodes-2-rr", validatetest.Layout{Nodes: 5000, Reflectors: 2}},
	{"5000-nodes-10-rr", validatetest.Layout{Nodes: 5000, Reflectors: 10}},
	{"5000-nodes-3-zones-2-rr-each", validatetest.Layout{Nodes: 5000, Reflectors: 6, Zones: 3}},
}

func TestGeneratedLayoutsAreClean(t *testing.T) {
	for _, lt := range layouts {
		s := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
		if fs := validate.New(validate.Config{}).Audit(t.Context(), s); len(fs) != 0 {
			t.Errorf("%s: %d findings, first: %+v", lt.name, len(fs), fs[0])
		}
	}
}

// BenchmarkEvaluate is one admission decision with every built-in rule, route propagation
// included: a client node gets a label (the common, harmless write).
func BenchmarkEvaluate(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			old := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed.Node.K8sLabels["team"] = "payments"
			e := validate.New(validate.Config{})
			ch := model.Change{Operation: model.Update, Object: changed, Old: old}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Evaluate(b.Context(), ch, before); len(fs) != 0 {
					b.Fatalf("findings: %+v", fs)
				}
			}
		})
	}
}

// BenchmarkEvaluatePeer is a BGPPeer change: the peer's selectors are evaluated on every node.
func BenchmarkEvaluatePeer(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := validate.New(validate.Config{})
			ch := model.Change{Operation: model.Create, Object: validatetest.Peer("extra", "has(route-reflector)", "has(route-reflector)")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}

// BenchmarkAudit is a full audit: snapshot (analysis) plus every rule.
func BenchmarkAudit(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			state := calico.NewState(validatetest.Generate(lt.l))
			e := validate.New(validate.Config{})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Audit(b.Context(), model.NewSnapshot(state)); len(fs) != 0 {
					b.Fatalf("findings: %+v", fs[0])
				}
			}
		})
	}
}

// BenchmarkEvaluatePeerNewSelector is a BGPPeer whose selector no other peer uses: it is
// evaluated on every node and the classes are rebuilt. Each round's selector is new (the
// same nodes, written differently), so that no parse is remembered from the round before.
func BenchmarkEvaluatePeerNewSelector(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := model.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := validate.New(validate.Config{})
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				ch := model.Change{Operation: model.Create, Object: validatetest.Peer("extra", newSelector(i), "has(route-reflector)")}
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}

// newSelector is the i'th way of writing a selector of every Linux node.
func newSelector(i int) string {
	return fmt.Sprintf("kubernetes.io/os in {'linux', 'not-an-os-%d'}", i)
}

// racks is 5,000 nodes in 1,000 racks, one BGPPeer per rack peering it with two reflectors:
// a layout with as many BGPPeers as classes of nodes.
func racks() []*calico.Object { return validatetest.Racks() }

// BenchmarkEvaluateRacks is a client's label change with 1,000 rack BGPPeers.
func BenchmarkEvaluateRacks(b *testing.B) { benchRackClientLabel(b, "team", "payments") }

// BenchmarkEvaluateRacksMove is a client moving to another rack (its rack label changed):
// another rack BGPPeer applies to it.
func BenchmarkEvaluateRacksMove(b *testing.B) { benchRackClientLabel(b, "rack", "r101") }

// benchRackClientLabel decides, with 1,000 rack BGPPeers, a change of one client's label.
func benchRackClientLabel(b *testing.B, key, value string) {
	before := model.NewSnapshot(calico.NewState(racks()))
	e := validate.New(validate.Config{})
	old := before.State.Node("node-00100")
	changed := *old
	changed.K8sLabels = maps.Clone(old.K8sLabels)
	changed.K8sLabels[key] = value
	ch := model.Change{Operation: model.Update, Old: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: old},
		Object: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: &changed}}
	b.ReportAllocs()
	for b.Loop() {
		if fs := e.Evaluate(b.Context(), ch, before); len(fs) != 0 {
			b.Fatalf("findings: %+v", fs)
		}
	}
}

// BenchmarkEvaluateRacksPeer is a change to one of the 1,000 rack BGPPeers: labels only
// (what kubectl apply and GitOps tools write; the analysis is kept), its node selector
// written anew for the same rack (the sessions are kept), also while the node-to-node mesh is
// still on (the BGPPeers made before it is switched off: 1,001 classes meshed), and its node
// selector taking another rack in too (a class more: sessions and propagation made again).
func BenchmarkEvaluateRacksPeer(b *testing.B) {
	objs := racks()
	before := model.NewSnapshot(calico.NewState(objs))
	objs[len(objs)-1] = validatetest.Config(true)
	meshOn := model.NewSnapshot(calico.NewState(objs))
	e := validate.New(validate.Config{})
	old := before.State.Object(calico.KindBGPPeer, "rack-0005")
	changes := map[string]func(i int) *apiv3.BGPPeer{
		"labels": func(i int) *apiv3.BGPPeer {
			p := old.Peer.DeepCopy()
			p.Labels = map[string]string{"revision": fmt.Sprint(i)}
			return p
		},
		"new-selector": func(i int) *apiv3.BGPPeer {
			p := old.Peer.DeepCopy()
			p.Spec.NodeSelector = fmt.Sprintf("rack in {'r5', 'x%d'}", i)
			return p
		},
		"another-rack": func(i int) *apiv3.BGPPeer {
			p := old.Peer.DeepCopy()
			p.Spec.NodeSelector = fmt.Sprintf("rack in {'r5', 'r%d'}", 6+i%900)
			return p
		},
	}
	for name, change := range changes {
		for _, state := range []struct {
			prefix string
			s      *model.Snapshot
		}{{"", before}, {"mesh-on-", meshOn}} {
			if state.prefix != "" && name == "labels" {
				continue
			}
			b.Run(state.prefix+name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					ch := model.Change{Operation: model.Update, Old: old, Object: &calico.Object{Kind: calico.KindBGPPeer, Group: old.Group, Name: old.Name, Peer: change(i)}}
					if fs := e.Evaluate(b.Context(), ch, state.s); len(fs) != 0 {
						b.Fatalf("findings: %+v", fs)
					}
				}
			})
		}
	}
}

// distinctIDs: 300 reflectors, each with a cluster ID of its own, all peered with one another
// (so that every reflector reflects to every other), and 5,000 clients peered with all of them.
func distinctIDs() []*calico.Object {
	objs := []*calico.Object{
		validatetest.Peer("rr-mesh", "has(route-reflector)", "has(route-reflector)"),
		validatetest.Peer("clients", "!has(route-reflector)", "has(route-reflector)"),
	}
	for r := range 300 {
		objs = append(objs, validatetest.Node(fmt.Sprintf("rr-%03d", r), fmt.Sprintf("10.200.%d.%d", r/256, r%256), "zone-0", fmt.Sprintf("1.0.%d.%d", r/256, r%256+1)))
	}
	for i := range 5000 {
		objs = append(objs, validatetest.Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), "zone-0", ""))
	}
	return append(objs, validatetest.Config(false))
}

// BenchmarkEvaluateDistinctIDs judges changes in the distinct-ID cluster: a reflector that
// leaves (its cluster ID removed: the what-ifs of the single points run) and a new BGPPeer.
func BenchmarkEvaluateDistinctIDs(b *testing.B) {
	before := model.NewSnapshot(calico.NewState(distinctIDs()))
	e := validate.New(validate.Config{})
	old := before.State.Node("rr-100")
	changed := *old
	changed.ClusterID = ""
	changed.K8sLabels = maps.Clone(old.K8sLabels)
	delete(changed.K8sLabels, "route-reflector")
	changes := map[string]model.Change{
		"reflector-leaves": {Operation: model.Update, Old: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: old},
			Object: &calico.Object{Kind: calico.KindNode, Name: old.Name, Node: &changed}},
		"new-peer": {Operation: model.Create, Object: validatetest.Peer("zone-peer", "zone == 'zone-0'", "has(route-reflector)")},
	}
	for name, ch := range changes {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}

// perNodePeers: 5,000 nodes, each with a BGPPeer of its own (node: X) to a route server
// outside the cluster (iBGP, which rrguard takes to reflect for everyone), the mesh off: every
// node is a class of its own.
func perNodePeers() []*calico.Object {
	objs := []*calico.Object{validatetest.Config(false)}
	for i := range 5000 {
		n := validatetest.Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), "zone-0", "")
		p := validatetest.Peer("rs-"+n.Name, "", "")
		p.Peer.Spec.NodeSelector, p.Peer.Spec.PeerSelector, p.Peer.Spec.Node = "", "", n.Name
		p.Peer.Spec.PeerIP, p.Peer.Spec.ASNumber = "192.168.0.1", 63400
		objs = append(objs, n, p)
	}
	return objs
}

// BenchmarkPerNodePeers: the snapshot of that cluster (what the webhook builds at start and
// the CLI per run), and a change of one node's BGPPeer to another route server.
func BenchmarkPerNodePeers(b *testing.B) {
	objs := perNodePeers()
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s := model.NewSnapshot(calico.NewState(objs)); s.Analysis.GapCount() != 0 {
				b.Fatalf("%d gaps", s.Analysis.GapCount())
			}
		}
	})
	before := model.NewSnapshot(calico.NewState(objs))
	e := validate.New(validate.Config{})
	old := before.State.Object(calico.KindBGPPeer, "rs-node-00100")
	b.Run("peer-ip", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			p := old.Peer.DeepCopy()
			p.Spec.PeerIP = fmt.Sprintf("192.168.1.%d", 1+i%200)
			ch := model.Change{Operation: model.Update, Old: old, Object: &calico.Object{Kind: calico.KindBGPPeer, Group: old.Group, Name: old.Name, Peer: p}}
			e.Evaluate(b.Context(), ch, before)
		}
	})
}
