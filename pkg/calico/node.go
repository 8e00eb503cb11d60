// Package calico is the edge between Kubernetes objects and rrguard's model: it decodes Calico
// Nodes (core/v1 Nodes carrying projectcalico.org annotations, and projectcalico.org/v3 Node
// manifests), BGPPeers and BGPConfigurations of both API groups, parses AS numbers and cluster
// IDs as Calico does, and turns a cluster state into a bgp.Topology.
package calico

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"strings"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The annotations calico-node and calicoctl keep a Calico Node in, on the core/v1 Node.
const (
	AnnotationIPv4Address         = "projectcalico.org/IPv4Address"
	AnnotationIPv6Address         = "projectcalico.org/IPv6Address"
	AnnotationASNumber            = "projectcalico.org/ASNumber"
	AnnotationClusterID           = "projectcalico.org/RouteReflectorClusterID"
	AnnotationIPv4IPIPTunnelAddr  = "projectcalico.org/IPv4IPIPTunnelAddr"
	AnnotationIPv4VXLANTunnelAddr = "projectcalico.org/IPv4VXLANTunnelAddr"
	AnnotationVXLANTunnelMACAddr  = "projectcalico.org/VXLANTunnelMACAddr"
	AnnotationIPv6VXLANTunnelAddr = "projectcalico.org/IPv6VXLANTunnelAddr"
	AnnotationVXLANTunnelMACV6    = "projectcalico.org/VXLANTunnelMACAddrV6"
	AnnotationLabels              = "projectcalico.org/labels"
	AnnotationAnnotations         = "projectcalico.org/annotations"
	AnnotationPrefix              = "projectcalico.org/"
)

// Node is a Calico node: the BGP fields as written (unparsed, so that rules can say what is
// wrong with them) and the label sets.
type Node struct {
	Name string
	// FromCore is true for a core/v1 Node (fields live in annotations), false for a v3 Node.
	FromCore bool
	// K8sLabels are the Kubernetes labels; CalicoLabels the projectcalico.org/labels ones.
	K8sLabels, CalicoLabels map[string]string
	// CalicoLabelsError is set when projectcalico.org/labels is not a JSON map of strings.
	CalicoLabelsError        error
	IPv4Address, IPv6Address string
	ASNumber                 string // "" when unset
	ClusterID                string
	// Ready is nil when readiness is unknown (no Ready condition).
	Ready *bool
}

// Labels is the Calico label set: Kubernetes labels merged over projectcalico.org/labels.
func (n *Node) Labels() map[string]string {
	out := make(map[string]string, len(n.K8sLabels)+len(n.CalicoLabels))
	maps.Copy(out, n.CalicoLabels)
	maps.Copy(out, n.K8sLabels)
	return out
}

// Label returns the value of one label of the Calico label set (see Labels), without merging
// the two label maps.
func (n *Node) Label(key string) (string, bool) {
	if v, ok := n.K8sLabels[key]; ok {
		return v, true
	}
	v, ok := n.CalicoLabels[key]
	return v, ok
}

// FieldPath returns where a BGP field of this node is written: an annotation on a core Node,
// spec.bgp.<field> on a v3 Node. field is the v3 JSON name (e.g. routeReflectorClusterID).
func (n *Node) FieldPath(field string) string {
	if !n.FromCore {
		return "spec.bgp." + field
	}
	return "metadata.annotations[" + annotationOf[field] + "]"
}

var annotationOf = map[string]string{
	"ipv4Address":             AnnotationIPv4Address,
	"ipv6Address":             AnnotationIPv6Address,
	"asNumber":                AnnotationASNumber,
	"routeReflectorClusterID": AnnotationClusterID,
}

// NodeFromCore reads the Calico node stored on a core/v1 Node.
func NodeFromCore(k *corev1.Node) *Node {
	var ready *bool
	for _, c := range k.Status.Conditions {
		if c.Type == corev1.NodeReady {
			r := c.Status == corev1.ConditionTrue
			ready = &r
		}
	}
	return NodeFromCoreFields(k.Name, k.Labels, k.Annotations, ready)
}

// NodeFromCoreFields reads the Calico node stored on a core/v1 Node from the parts of it
// NodeFromCore reads: name, labels, annotations and the Ready condition's status (nil: none).
// The node keeps labels as its K8sLabels.
func NodeFromCoreFields(name string, labels, annotations map[string]string, ready *bool) *Node {
	a := annotations
	n := &Node{
		Name: name, FromCore: true, K8sLabels: labels,
		IPv4Address: a[AnnotationIPv4Address], IPv6Address: a[AnnotationIPv6Address],
		ASNumber: a[AnnotationASNumber], ClusterID: a[AnnotationClusterID], Ready: ready,
	}
	if raw, ok := a[AnnotationLabels]; ok && raw != "" {
		if err := json.Unmarshal([]byte(raw), &n.CalicoLabels); err != nil {
			n.CalicoLabelsError = err
		}
	}
	return n
}

// NodeFromV3 reads a projectcalico.org/v3 Node manifest.
func NodeFromV3(v *libapiv3.Node) *Node {
	n := &Node{Name: v.Name, CalicoLabels: v.Labels}
	if b := v.Spec.BGP; b != nil {
		n.IPv4Address, n.IPv6Address, n.ClusterID = b.IPv4Address, b.IPv6Address, b.RouteReflectorClusterID
		if b.ASNumber != nil {
			n.ASNumber = b.ASNumber.String()
		}
	}
	return n
}

// ClusterIDProblem says what is wrong with a route-reflector cluster ID ("" if nothing).
// Calico wants an IPv4 dotted quad; the annotation path also lets a masked CIDR through,
// which BIRD then refuses (the node's BGP configuration stops updating).
func ClusterIDProblem(id string) string {
	if id == "" {
		return ""
	}
	if strings.Contains(id, "/") {
		return fmt.Sprintf("cluster ID %q is a CIDR: write the plain IPv4 address %q (BIRD refuses a masked cluster ID and the node's BGP configuration stops updating)", id, strings.SplitN(id, "/", 2)[0])
	}
	if ip := net.ParseIP(id); ip == nil || ip.To4() == nil || strings.Contains(id, ":") {
		return fmt.Sprintf("cluster ID %q is not an IPv4 address: use a dotted quad such as 244.0.0.1 (calico-node ignores an invalid one and the node silently stops being a reflector)", id)
	}
	return ""
}

// effectiveClusterID is the cluster ID calico-node acts on: an invalid one is ignored, a
// masked one is taken at its address.
func effectiveClusterID(id string) string {
	if id == "" {
		return ""
	}
	addr := strings.SplitN(id, "/", 2)[0]
	if ip := net.ParseIP(addr); ip == nil || ip.To4() == nil || strings.Contains(addr, ":") {
		return ""
	}
	return addr
}

// bgpAddress strips the mask off a BGP address ("10.30.0.13/22" → "10.30.0.13"); an address
// that does not parse is no address (calico-node ignores it).
func bgpAddress(cidr string, v6 bool) string {
	if cidr == "" {
		return ""
	}
	ip, _, err := net.ParseCIDR(cidr)
	if err != nil {
		ip = net.ParseIP(cidr)
	}
	if ip == nil || (ip.To4() != nil) == v6 {
		return ""
	}
	return ip.String()
}

// V3NodeFromUnstructured decodes a projectcalico.org/v3 Node object.
func V3NodeFromUnstructured(u *unstructured.Unstructured) (*libapiv3.Node, error) {
	if err := checkASN(u.Object, "spec", "bgp", "asNumber"); err != nil {
		return nil, fmt.Errorf("decode projectcalico.org/v3 Node %q: %w", u.GetName(), err)
	}
	raw, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var v libapiv3.Node
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode projectcalico.org/v3 Node %q: %w", u.GetName(), err)
	}
	return &v, nil
}

// NodeUpdateCalicoctl returns the core/v1 Node that `calicoctl replace` (Kubernetes datastore)
// sends as an UPDATE of nodes/status when given the v3 Node manifest: BGP fields go to the
// projectcalico.org annotations (absent fields remove them), metadata.labels to
// projectcalico.org/labels; the Kubernetes labels are not touched.
func NodeUpdateCalicoctl(current *corev1.Node, v3node *unstructured.Unstructured) (*corev1.Node, error) {
	v, err := V3NodeFromUnstructured(v3node)
	if err != nil {
		return nil, err
	}
	out := current.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	a := out.Annotations
	setOrDelete := func(key, value string) {
		if value != "" {
			a[key] = value
		} else {
			delete(a, key)
		}
	}
	setJSON := func(key string, m map[string]string) error {
		if len(m) == 0 {
			delete(a, key)
			return nil
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		a[key] = string(raw)
		return nil
	}
	if err := setJSON(AnnotationLabels, v.Labels); err != nil {
		return nil, err
	}
	if err := setJSON(AnnotationAnnotations, v.Annotations); err != nil {
		return nil, err
	}
	setOrDelete(AnnotationIPv4VXLANTunnelAddr, v.Spec.IPv4VXLANTunnelAddr)
	setOrDelete(AnnotationVXLANTunnelMACAddr, v.Spec.VXLANTunnelMACAddr)
	setOrDelete(AnnotationIPv6VXLANTunnelAddr, v.Spec.IPv6VXLANTunnelAddr)
	setOrDelete(AnnotationVXLANTunnelMACV6, v.Spec.VXLANTunnelMACAddrV6)
	b := v.Spec.BGP
	if b == nil {
		b = &libapiv3.NodeBGPSpec{}
	}
	setOrDelete(AnnotationIPv4Address, b.IPv4Address)
	setOrDelete(AnnotationIPv4IPIPTunnelAddr, b.IPv4IPIPTunnelAddr)
	setOrDelete(AnnotationIPv6Address, b.IPv6Address)
	setOrDelete(AnnotationClusterID, b.RouteReflectorClusterID)
	asn := ""
	if b.ASNumber != nil {
		asn = b.ASNumber.String()
	}
	setOrDelete(AnnotationASNumber, asn)
	return out, nil
}

// NodeUpdateKubectl returns the core/v1 Node after `kubectl annotate --overwrite` of the BGP
// fields the v3 manifest sets and `kubectl label --overwrite` of its labels: fields the
// manifest leaves out are left as they are, as those commands do.
func NodeUpdateKubectl(current *corev1.Node, v3node *unstructured.Unstructured) (*corev1.Node, error) {
	v, err := V3NodeFromUnstructured(v3node)
	if err != nil {
		return nil, err
	}
	out := current.DeepCopy()
	if len(v.Labels) > 0 && out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, v.Labels)
	b := v.Spec.BGP
	if b == nil {
		return out, nil
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	asn := ""
	if b.ASNumber != nil {
		asn = b.ASNumber.String()
	}
	for key, value := range map[string]string{
		AnnotationIPv4Address: b.IPv4Address, AnnotationIPv6Address: b.IPv6Address,
		AnnotationIPv4IPIPTunnelAddr: b.IPv4IPIPTunnelAddr, AnnotationClusterID: b.RouteReflectorClusterID,
		AnnotationASNumber: asn,
	} {
		if value != "" {
			out.Annotations[key] = value
		}
	}
	return out, nil
}
