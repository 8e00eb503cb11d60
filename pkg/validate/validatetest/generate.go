// Package validatetest generates realistic clusters for rrguard's benchmarks and tests.
package validatetest

import (
	"fmt"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/calico"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Layout describes a generated cluster.
type Layout struct {
	Nodes, Reflectors int
	// Zones is 0 for one reflector set serving every node, n for reflectors and BGPPeers per
	// zone (topology.kubernetes.io/zone), each zone with its own cluster ID.
	Zones int
}

// Node returns a Ready core/v1 Node with a BGP address; a cluster ID makes it a labelled reflector.
func Node(name, ip, zone, cid string) *calico.Object {
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

// Peer returns a crd.projectcalico.org/v1 BGPPeer.
func Peer(name, nodeSel, peerSel string) *calico.Object {
	p := &apiv3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: apiv3.BGPPeerSpec{NodeSelector: nodeSel, PeerSelector: peerSel}}
	return &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: name, Peer: p}
}

// Config returns the default BGPConfiguration: AS 63400, the mesh on or off.
func Config(mesh bool) *calico.Object {
	as := numorstring.ASNumber(63400)
	c := &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}}
	return &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default", Config: c}
}

// Generate builds a cluster with the mesh off and a working reflector design: one set of
// reflectors for all, or per zone.
func Generate(l Layout) []*calico.Object {
	var out []*calico.Object
	zones := max(l.Zones, 1)
	for i := 0; i < l.Nodes; i++ {
		zone := fmt.Sprintf("zone-%d", i%zones)
		cid := ""
		if i < l.Reflectors {
			cid = "1.0.0.1"
			if l.Zones > 0 {
				cid = fmt.Sprintf("1.0.0.%d", i%zones+1)
			}
		}
		out = append(out, Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), zone, cid))
	}
	if l.Zones == 0 {
		out = append(out, Peer("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)"),
			Peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)"))
	} else {
		for z := 0; z < l.Zones; z++ {
			zone := fmt.Sprintf("zone-%d", z)
			out = append(out, Peer("clients-"+zone, fmt.Sprintf("!has(route-reflector) && topology.kubernetes.io/zone == '%s'", zone),
				fmt.Sprintf("has(route-reflector) && topology.kubernetes.io/zone == '%s'", zone)))
		}
		out = append(out, Peer("rr-to-rr-peer", "has(route-reflector)", "has(route-reflector)"))
	}
	return append(out, Config(false))
}

// Racks is a cluster of 5,000 nodes in 1,000 racks (label rack: r0 … r999), one BGPPeer per
// rack from its nodes to the two reflectors (one cluster ID), the reflectors peered with each
// other, the mesh off: the layout of hack/loadbench and the rack benchmarks.
func Racks() []*calico.Object {
	objs := []*calico.Object{
		Node("rr-1", "10.0.0.1", "zone-0", "1.0.0.1"), Node("rr-2", "10.0.0.2", "zone-0", "1.0.0.1"),
		Peer("rr-mesh", "has(route-reflector)", "has(route-reflector)"),
	}
	for r := range 1000 {
		objs = append(objs, Peer(fmt.Sprintf("rack-%04d", r), fmt.Sprintf("rack == 'r%d'", r), "has(route-reflector)"))
	}
	for i := range 5000 {
		n := Node(fmt.Sprintf("node-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, (i/256)%256, i%256), "zone-0", "")
		n.CoreNode.Labels["rack"] = fmt.Sprintf("r%d", i%1000)
		n.Node = calico.NodeFromCore(n.CoreNode)
		objs = append(objs, n)
	}
	return append(objs, Config(false))
}
