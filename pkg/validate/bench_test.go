package validate

import (
	"fmt"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/calico"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// layout describes a generated cluster.
type layout struct {
	nodes, reflectors int
	zones             int // 0: one reflector set for all; n: reflectors and peers per zone
}

func genNode(name, ip, zone, cid string) *calico.Object {
	k := &corev1.Node{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": zone},
			Annotations: map[string]string{calico.AnnotationIPv4Address: ip + "/16"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if cid != "" {
		k.Labels["route-reflector"] = "true"
		k.Annotations[calico.AnnotationClusterID] = cid
	}
	return &calico.Object{Kind: calico.KindNode, Name: name, CoreNode: k, Node: calico.NodeFromCore(k)}
}

func genPeer(name, nodeSel, peerSel string) *calico.Object {
	p := &apiv3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: apiv3.BGPPeerSpec{NodeSelector: nodeSel, PeerSelector: peerSel}}
	return &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: name, Peer: p}
}

func genConfig(mesh bool) *calico.Object {
	as := numorstring.ASNumber(63400)
	c := &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}}
	return &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default", Config: c}
}

// generate builds a cluster with the mesh off and a working reflector design.
func generate(l layout) []*calico.Object {
	var out []*calico.Object
	zones := max(l.zones, 1)
	for i := 0; i < l.nodes; i++ {
		zone := fmt.Sprintf("zone-%d", i%zones)
		cid := ""
		if i < l.reflectors {
			cid = "1.0.0.1"
			if l.zones > 0 {
				cid = fmt.Sprintf("1.0.0.%d", i%zones+1)
			}
		}
		out = append(out, genNode(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), zone, cid))
	}
	if l.zones == 0 {
		out = append(out, genPeer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)"),
			genPeer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)"))
	} else {
		for z := 0; z < l.zones; z++ {
			zone := fmt.Sprintf("zone-%d", z)
			out = append(out, genPeer("clients-"+zone, fmt.Sprintf("!has(route-reflector) && topology.kubernetes.io/zone == '%s'", zone),
				fmt.Sprintf("has(route-reflector) && topology.kubernetes.io/zone == '%s'", zone)))
		}
		out = append(out, genPeer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)"))
	}
	return append(out, genConfig(false))
}

var layouts = []struct {
	name string
	l    layout
}{
	{"500-nodes-2-rr", layout{nodes: 500, reflectors: 2}},
	{"5000-nodes-2-rr", layout{nodes: 5000, reflectors: 2}},
	{"5000-nodes-10-rr", layout{nodes: 5000, reflectors: 10}},
	{"5000-nodes-3-zones-2-rr-each", layout{nodes: 5000, reflectors: 6, zones: 3}},
}

func TestGeneratedLayoutsAreClean(t *testing.T) {
	for _, lt := range layouts {
		s := NewSnapshot(calico.NewState(generate(lt.l)))
		if fs := New(Config{}).Audit(s); len(fs) != 0 {
			t.Errorf("%s: %d findings, first: %+v", lt.name, len(fs), fs[0])
		}
	}
}

// BenchmarkEvaluate is one admission decision with every built-in rule, route propagation
// included: a client node gets a label (the common, harmless write).
func BenchmarkEvaluate(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := NewSnapshot(calico.NewState(generate(lt.l)))
			old := genNode("node-00100", "10.1.0.100", "zone-1", "")
			changed := genNode("node-00100", "10.1.0.100", "zone-1", "")
			changed.Node.K8sLabels["team"] = "payments"
			e := New(Config{})
			ch := Change{Operation: Update, Object: changed, Old: old}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Evaluate(ch, before); len(fs) != 0 {
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
			before := NewSnapshot(calico.NewState(generate(lt.l)))
			e := New(Config{})
			ch := Change{Operation: Create, Object: genPeer("extra", "has(route-reflector)", "has(route-reflector)")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Evaluate(ch, before)
			}
		})
	}
}

// BenchmarkAudit is a full audit: snapshot (analysis) plus every rule.
func BenchmarkAudit(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			state := calico.NewState(generate(lt.l))
			e := New(Config{})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Audit(NewSnapshot(state)); len(fs) != 0 {
					b.Fatalf("findings: %+v", fs[0])
				}
			}
		})
	}
}
