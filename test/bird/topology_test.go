//go:build e2e

package bird

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/projectcalico/calico/libcalico-go/lib/backend/model"
	calicoselector "github.com/projectcalico/calico/libcalico-go/lib/selector"
	"github.com/projectcalico/calico/libcalico-go/lib/selector/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// tnode is a node of a test topology; its addresses follow from its index.
type tnode struct {
	name   string
	v4, v6 bool
	cid    string
	as     uint32
	labels map[string]string
	// calicoLabels: the labels are Calico-only ones (the projectcalico.org/labels annotation,
	// as calicoctl writes them) instead of Kubernetes labels.
	calicoLabels bool
}

// secretRef names a key of a Secret in kube-system, where confd reads BGP passwords.
type secretRef struct{ name, key string }

// tpeer is a BGPPeer of a test topology.
type tpeer struct {
	name, node, nodeSel, peerSel, peerIP string
	as                                   uint32
	manual                               bool
	filters                              []string
	password                             *secretRef
}

// tpool is an IPPool. Every node its nodeSelector selects holds one block of it (a confirmed
// block affinity); mode is "ipip", "vxlan" or "" (no encapsulation).
type tpool struct {
	name, cidr, mode, nodeSel string
	blockSize                 int
	noExport                  bool // disableBGPExport
}

// trule is a BGPFilter rule; min and max (0: unset) are its prefixLength.
type trule struct {
	action, op, cidr, source, iface string
	min, max                        int32
}

// tfilter is a BGPFilter.
type tfilter struct {
	name                                   string
	exportV4, importV4, exportV6, importV6 []trule
}

type topology struct {
	nodes []tnode
	peers []tpeer
	mesh  bool
	as    uint32
	// pools: nil means Calico's default IPv4 pool (IPIP), and an IPv6 pool when a node has an
	// IPv6 address.
	pools        []tpool
	filters      []tfilter
	meshPassword *secretRef
	// secrets are Secrets in kube-system: name → key → value.
	secrets map[string]map[string]string
	// v3: rrguard reads the Calico objects (not Nodes, Secrets, block affinities) as
	// projectcalico.org/v3; the API server always holds crd.projectcalico.org/v1, which is
	// what confd reads.
	v3 bool
}

func v4(i int) string { return fmt.Sprintf("10.77.0.%d", i+1) }
func v6(i int) string { return fmt.Sprintf("fd77::%x", i+1) }

// testLabel marks the Secrets the tests create, for the reset between topologies.
const testLabel = "rrguard.io/test-bird"

func (t *topology) asNumber() uint32 {
	if t.as == 0 {
		return 64512
	}
	return t.as
}

func (t *topology) hasV6() bool {
	return slices.ContainsFunc(t.nodes, func(n tnode) bool { return n.v6 })
}

// poolList is the topology's pools, defaults included.
func (t *topology) poolList() []tpool {
	if t.pools != nil {
		return t.pools
	}
	pools := []tpool{{name: "default-ipv4-ippool", cidr: "192.168.0.0/16", blockSize: 26, mode: "ipip"}}
	if t.hasV6() {
		pools = append(pools, tpool{name: "default-ipv6-ippool", cidr: "fd10::/48", blockSize: 122})
	}
	return pools
}

// blockOf is the block node i holds in pool p: the i-th block of 256 IPv4 or 65536 IPv6
// addresses of the pool (192.168.i.0/26, fd10::i:0/122).
func blockOf(p tpool, i int) netip.Prefix {
	base := netip.MustParsePrefix(p.cidr).Masked().Addr()
	if base.Is4() {
		a := base.As4()
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(i)<<8)
		return netip.PrefixFrom(netip.AddrFrom4(a), p.blockSize)
	}
	a := base.As16()
	binary.BigEndian.PutUint64(a[8:], binary.BigEndian.Uint64(a[8:])+uint64(i)<<16)
	return netip.PrefixFrom(netip.AddrFrom16(a), p.blockSize)
}

// blocks are the blocks each node holds: one of each pool whose nodeSelector selects it,
// evaluated by Calico's own selector code as Calico IPAM does.
func (t *topology) blocks(tb testing.TB) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, p := range t.poolList() {
		expr := p.nodeSel
		if expr == "" {
			expr = "all()"
		}
		sel, err := calicoselector.Parse(expr)
		if err != nil {
			tb.Fatalf("pool %s: nodeSelector %q: %v", p.name, expr, err)
		}
		for i, n := range t.nodes {
			if sel.EvaluateLabels(parser.MapAsLabels(n.labels)) {
				out[n.name] = append(out[n.name], blockOf(p, i))
			}
		}
	}
	return out
}

func obj(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

const crdGroup = "crd.projectcalico.org/v1"

func secretKeyRef(r *secretRef) map[string]any {
	return map[string]any{"secretKeyRef": map[string]any{"name": r.name, "key": r.key}}
}

func rules(rs []trule) []any {
	var out []any
	for _, r := range rs {
		m := map[string]any{"action": r.action}
		if r.op != "" {
			m["matchOperator"] = r.op
		}
		if r.cidr != "" {
			m["cidr"] = r.cidr
		}
		if r.source != "" {
			m["source"] = r.source
		}
		if r.iface != "" {
			m["interface"] = r.iface
		}
		if r.min != 0 || r.max != 0 {
			pl := map[string]any{}
			if r.min != 0 {
				pl["min"] = int64(r.min)
			}
			if r.max != 0 {
				pl["max"] = int64(r.max)
			}
			m["prefixLength"] = pl
		}
		out = append(out, m)
	}
	return out
}

// objects are the topology as calico-node and calicoctl find it in a Kubernetes-datastore
// cluster: Calico's kinds in crd.projectcalico.org/v1, core/v1 Nodes with their
// projectcalico.org/* annotations, block affinities labelled as Calico IPAM labels them.
func (t *topology) objects(tb testing.TB) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	names := make([]string, 0, len(t.secrets))
	for name := range t.secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data := map[string]any{}
		for k, v := range t.secrets[name] {
			data[k] = v
		}
		s := obj("v1", "Secret", name, nil)
		s.SetNamespace("kube-system")
		s.SetLabels(map[string]string{testLabel: "true"})
		s.Object["stringData"] = data
		out = append(out, s)
	}

	cfg := map[string]any{"nodeToNodeMeshEnabled": t.mesh, "asNumber": int64(t.asNumber())}
	if t.meshPassword != nil {
		cfg["nodeMeshPassword"] = secretKeyRef(t.meshPassword)
	}
	out = append(out, obj(crdGroup, "BGPConfiguration", "default", cfg))

	for _, p := range t.poolList() {
		spec := map[string]any{"cidr": p.cidr, "blockSize": int64(p.blockSize), "ipipMode": "Never", "vxlanMode": "Never", "natOutgoing": true}
		switch p.mode {
		case "ipip":
			spec["ipipMode"] = "Always"
		case "vxlan":
			spec["vxlanMode"] = "Always"
		}
		if p.noExport {
			spec["disableBGPExport"] = true
		}
		if p.nodeSel != "" {
			spec["nodeSelector"] = p.nodeSel
		} else {
			spec["nodeSelector"] = "all()"
		}
		out = append(out, obj(crdGroup, "IPPool", p.name, spec))
	}

	for _, f := range t.filters {
		spec := map[string]any{}
		for field, rs := range map[string][]trule{"exportV4": f.exportV4, "importV4": f.importV4, "exportV6": f.exportV6, "importV6": f.importV6} {
			if len(rs) > 0 {
				spec[field] = rules(rs)
			}
		}
		out = append(out, obj(crdGroup, "BGPFilter", f.name, spec))
	}

	for i, n := range t.nodes {
		node := obj("v1", "Node", n.name, nil)
		ann := map[string]string{}
		if n.v4 {
			ann["projectcalico.org/IPv4Address"] = v4(i) + "/16"
		}
		if n.v6 {
			ann["projectcalico.org/IPv6Address"] = v6(i) + "/64"
		}
		if n.cid != "" {
			ann["projectcalico.org/RouteReflectorClusterID"] = n.cid
		}
		if n.as != 0 {
			ann["projectcalico.org/ASNumber"] = fmt.Sprint(n.as)
		}
		if n.calicoLabels && len(n.labels) > 0 {
			js, err := json.Marshal(n.labels)
			if err != nil {
				tb.Fatal(err)
			}
			ann["projectcalico.org/labels"] = string(js)
		} else if len(n.labels) > 0 {
			node.SetLabels(n.labels)
		}
		node.SetAnnotations(ann)
		out = append(out, node)
	}

	blocks := t.blocks(tb)
	for _, n := range t.nodes {
		for _, b := range blocks[n.name] {
			// Calico IPAM's own labels (hostname hash, affinity type, IP version): confd lists
			// a node's affinities by the hash of its name.
			ba := &libapiv3.BlockAffinity{Spec: libapiv3.BlockAffinitySpec{State: "confirmed", Node: n.name, Type: "host", CIDR: b.String(), Deleted: "false"}}
			model.EnsureBlockAffinityLabels(ba)
			name := n.name + "-" + strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(b.String())
			u := obj(crdGroup, "BlockAffinity", name, map[string]any{"state": ba.Spec.State, "node": ba.Spec.Node, "type": ba.Spec.Type, "cidr": ba.Spec.CIDR, "deleted": ba.Spec.Deleted})
			u.SetLabels(ba.Labels)
			out = append(out, u)
		}
	}

	for _, p := range t.peers {
		spec := map[string]any{}
		for field, v := range map[string]string{"node": p.node, "nodeSelector": p.nodeSel, "peerSelector": p.peerSel, "peerIP": p.peerIP} {
			if v != "" {
				spec[field] = v
			}
		}
		if p.as != 0 {
			spec["asNumber"] = int64(p.as)
		}
		if p.manual {
			spec["reversePeering"] = "Manual"
		}
		if len(p.filters) > 0 {
			fs := make([]any, len(p.filters))
			for i, f := range p.filters {
				fs[i] = f
			}
			spec["filters"] = fs
		}
		if p.password != nil {
			spec["password"] = secretKeyRef(p.password)
		}
		out = append(out, obj(crdGroup, "BGPPeer", p.name, spec))
	}
	return out
}

// manifests are the objects as rrguard reads them from files: one multi-document YAML.
func (t *topology) manifests(tb testing.TB, objs []*unstructured.Unstructured) string {
	var b strings.Builder
	for _, o := range objs {
		if t.v3 && o.GetAPIVersion() == crdGroup && o.GetKind() != "BlockAffinity" {
			o = o.DeepCopy()
			o.SetAPIVersion("projectcalico.org/v3")
		}
		raw, err := yaml.Marshal(o.Object)
		if err != nil {
			tb.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(raw)
	}
	return b.String()
}

// planInput is the topology as projectcalico.org/v3 Node and BGPConfiguration manifests, the
// form `rrguard plan` answers with whole v3 objects (TestPlanStates replays them).
func (t *topology) planInput() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: %v, asNumber: %d}\n", t.mesh, t.asNumber())
	for i, n := range t.nodes {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: %s\n  labels: {", n.name)
		keys := make([]string, 0, len(n.labels))
		for k := range n.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for j, k := range keys {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %q", k, n.labels[k])
		}
		b.WriteString("}\nspec:\n  bgp:\n")
		if n.v4 {
			fmt.Fprintf(&b, "    ipv4Address: %s/16\n", v4(i))
		}
		if n.v6 {
			fmt.Fprintf(&b, "    ipv6Address: %s/64\n", v6(i))
		}
		if n.cid != "" {
			fmt.Fprintf(&b, "    routeReflectorClusterID: %s\n", n.cid)
		}
		if n.as != 0 {
			fmt.Fprintf(&b, "    asNumber: %d\n", n.as)
		}
	}
	for _, p := range t.peers {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: %s}\nspec:\n", p.name)
		if p.nodeSel != "" {
			fmt.Fprintf(&b, "  nodeSelector: %q\n", p.nodeSel)
		}
		if p.peerSel != "" {
			fmt.Fprintf(&b, "  peerSelector: %q\n", p.peerSel)
		}
	}
	return b.String()
}
