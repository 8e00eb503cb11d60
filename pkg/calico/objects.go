package calico

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strconv"
	"strings"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The kinds rrguard guards.
const (
	KindNode             = "Node"
	KindBGPPeer          = "BGPPeer"
	KindBGPConfiguration = "BGPConfiguration"
	KindBGPFilter        = "BGPFilter"
	KindIPPool           = "IPPool"
	// KindBlockAffinity is read, never judged: which IPAM blocks each node holds.
	KindBlockAffinity = "BlockAffinity"
)

// The API groups Calico resources come in.
const (
	GroupCore = ""
	// GroupCRD is Calico's storage group (the default "v1 CRD" mode).
	GroupCRD = "crd.projectcalico.org"
	// GroupV3 is Calico's API group (aggregated API server, or native v3 CRDs).
	GroupV3 = "projectcalico.org"
)

// ErrUnknownKind is returned for objects rrguard has nothing to say about.
var ErrUnknownKind = errors.New("not a kind rrguard checks")

// Object is one decoded resource: one of its kind's fields is set.
type Object struct {
	Kind, Group, Name string
	Node              *Node
	CoreNode          *corev1.Node // the core/v1 Node a Calico Node came from
	Peer              *apiv3.BGPPeer
	Config            *apiv3.BGPConfiguration
	Filter            *apiv3.BGPFilter
	Pool              *apiv3.IPPool
	Affinity          *Affinity
}

// Affinity is a BlockAffinity: node Node holds the IPAM block CIDR.
type Affinity struct {
	Node, CIDR string
	// State is confirmed, pending or pendingDeletion; Deleted marks one Calico is removing.
	State   string
	Deleted bool
}

// affinityJSON is what rrguard reads of a BlockAffinity (crd.projectcalico.org/v1 writes
// spec.deleted as a string, projectcalico.org/v3 as a boolean).
type affinityJSON struct {
	Spec struct {
		Node    string          `json:"node"`
		CIDR    string          `json:"cidr"`
		State   string          `json:"state"`
		Deleted json.RawMessage `json:"deleted"`
	} `json:"spec"`
}

func decodeAffinity(raw []byte) (*Affinity, error) {
	var a affinityJSON
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	out := &Affinity{Node: a.Spec.Node, CIDR: a.Spec.CIDR, State: a.Spec.State}
	switch d := strings.Trim(string(a.Spec.Deleted), `"`); d {
	case "", "null", "false":
	case "true":
		out.Deleted = true
	default:
		return nil, fmt.Errorf("spec.deleted: %s is not true or false", validateQuote(d))
	}
	return out, nil
}

// validateQuote quotes a value for an error, cut short.
func validateQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// Ref names the object as users write it: "BGPPeer.crd.projectcalico.org/rr-to-rr-peer".
func (o *Object) Ref() string {
	if o.Group == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "." + o.Group + "/" + o.Name
}

// Decode reads an object from its unstructured form. Objects of other kinds give
// ErrUnknownKind (wrapped with the kind).
func Decode(u *unstructured.Unstructured) (*Object, error) {
	gvk := u.GroupVersionKind()
	o := &Object{Kind: gvk.Kind, Group: gvk.Group, Name: u.GetName()}
	if o.Name == "" {
		return nil, fmt.Errorf("%s %s: metadata.name is required", gvk.GroupVersion(), gvk.Kind)
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", gvk.Kind, o.Name, err)
	}
	switch {
	case gvk.Group == GroupCore && gvk.Version == "v1" && gvk.Kind == KindNode:
		var k corev1.Node
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("decode Node %q: %w", o.Name, err)
		}
		o.CoreNode = &k
		o.Node = NodeFromCore(&k)
	case gvk.Group == GroupV3 && gvk.Kind == KindNode:
		if err := checkASN(u.Object, "spec", "bgp", "asNumber"); err != nil {
			return nil, fmt.Errorf("decode %s %q: %w", o.Ref(), o.Name, err)
		}
		var v libapiv3.Node
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Node = NodeFromV3(&v)
	case (gvk.Group == GroupCRD || gvk.Group == GroupV3) && gvk.Kind == KindBGPPeer:
		if err := checkASN(u.Object, "spec", "asNumber"); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		var p apiv3.BGPPeer
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Peer = &p
	case (gvk.Group == GroupCRD || gvk.Group == GroupV3) && gvk.Kind == KindBGPConfiguration:
		if err := checkASN(u.Object, "spec", "asNumber"); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		var c apiv3.BGPConfiguration
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Config = &c
	case (gvk.Group == GroupCRD || gvk.Group == GroupV3) && gvk.Kind == KindBGPFilter:
		var f apiv3.BGPFilter
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Filter = &f
	case (gvk.Group == GroupCRD || gvk.Group == GroupV3) && gvk.Kind == KindIPPool:
		var p apiv3.IPPool
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Pool = &p
	case (gvk.Group == GroupCRD || gvk.Group == GroupV3) && gvk.Kind == KindBlockAffinity:
		a, err := decodeAffinity(raw)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		o.Affinity = a
	default:
		return nil, fmt.Errorf("%s %s %q: %w", gvk.GroupVersion(), gvk.Kind, o.Name, ErrUnknownKind)
	}
	return o, nil
}

// DecodeCoreNodeJSON reads a core/v1 Node from JSON into the fields rrguard uses, as
// DecodeJSON does; nil when raw is not a well-formed core/v1 Node with a name (Decode then
// says what is wrong with it).
func DecodeCoreNodeJSON(raw []byte) *Object {
	var n coreNodeJSON
	if json.Unmarshal(raw, &n) != nil || n.APIVersion != "v1" || n.Kind != KindNode || n.Metadata.Name == "" {
		return nil
	}
	return n.object()
}

// coreNodeJSON is what rrguard reads of a core/v1 Node.
type coreNodeJSON struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Status     struct {
		Conditions []corev1.NodeCondition `json:"conditions"`
	} `json:"status"`
}

func (n *coreNodeJSON) object() *Object {
	k := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: KindNode}, ObjectMeta: n.Metadata}
	k.Status.Conditions = n.Status.Conditions
	return &Object{Kind: KindNode, Name: k.Name, CoreNode: k, Node: NodeFromCore(k)}
}

// DecodeJSON reads an object from JSON. A core/v1 Node (the most frequent request) is read in
// one pass into the few fields rrguard uses (a real Node's status, with its image list, is
// most of its bytes); other kinds go through Decode.
func DecodeJSON(raw []byte) (*Object, error) {
	var n coreNodeJSON
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	if n.APIVersion == "v1" && n.Kind == KindNode {
		if n.Metadata.Name == "" {
			return nil, fmt.Errorf("v1 Node: metadata.name is required")
		}
		return n.object(), nil
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return Decode(&u)
}

// checkASN gives a field-named error for an AS number Calico cannot parse.
func checkASN(obj map[string]interface{}, path ...string) error {
	v, found, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || v == nil {
		return nil
	}
	field := ""
	for i, p := range path {
		if i > 0 {
			field += "."
		}
		field += p
	}
	switch x := v.(type) {
	case string:
		if _, err := ParseASN(x); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	case int64:
		if x < 0 || x > math.MaxUint32 {
			return fmt.Errorf("%s: %d is not an AS number (0 to 4294967295)", field, x)
		}
	case float64:
		if x != math.Trunc(x) {
			return fmt.Errorf("%s: %v is not an AS number: quote an asdot number, e.g. \"1.10\" (unquoted, YAML reads it as the decimal 1.1)", field, x)
		}
		if x < 0 || x > math.MaxUint32 {
			return fmt.Errorf("%s: %v is not an AS number (0 to 4294967295)", field, x)
		}
	default:
		return fmt.Errorf("%s: %v (%T) is not an AS number: write a number or an asdot string like \"1.10\"", field, v, v)
	}
	return nil
}

// ParseASN parses an AS number as Calico does: decimal uint32, or asdot "H.L" with 16-bit parts.
func ParseASN(s string) (uint32, error) {
	n, err := numorstring.ASNumberFromString(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an AS number: write a decimal from 1 to 4294967294 or asdot H.L with both parts at most 65535 (for example \"1.10\" = 65546)", s)
	}
	return uint32(n), nil
}

// peerAddress strips the port off a BGPPeer peerIP ("10.0.0.1:179", "[fd00::1]:179").
// peerAddressPort splits a BGPPeer's peerIP into the address and the port (0 when none):
// "10.0.0.1:166", "[fd00::1]:166" or a plain address.
func peerAddressPort(peerIP string) (string, uint16) {
	if host, port, err := net.SplitHostPort(peerIP); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			return host, uint16(n)
		}
		return host, 0
	}
	return peerIP, 0
}

// SameForBGP reports whether two versions of an object mean the same to rrguard (and to
// calico-node, which reads the name and spec: metadata such as labels and annotations aside).
func SameForBGP(a, b *Object) bool {
	switch {
	case a.Node != nil && b.Node != nil:
		return reflect.DeepEqual(a.Node, b.Node)
	case a.Peer != nil && b.Peer != nil:
		return a.Group == b.Group && reflect.DeepEqual(a.Peer.Spec, b.Peer.Spec)
	case a.Config != nil && b.Config != nil:
		return a.Group == b.Group && reflect.DeepEqual(a.Config.Spec, b.Config.Spec)
	case a.Filter != nil && b.Filter != nil:
		return a.Group == b.Group && reflect.DeepEqual(a.Filter.Spec, b.Filter.Spec)
	case a.Pool != nil && b.Pool != nil:
		return a.Group == b.Group && reflect.DeepEqual(a.Pool.Spec, b.Pool.Spec)
	case a.Affinity != nil && b.Affinity != nil:
		return *a.Affinity == *b.Affinity
	}
	return false
}
