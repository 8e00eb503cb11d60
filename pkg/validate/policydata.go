package validate

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/policy"
)

// ZoneLabel is the label that names a node's zone in the policies' cluster data.
const ZoneLabel = "topology.kubernetes.io/zone"

// clusterData is data.rrguard.cluster: the state as policies see it (see docs/policies.md).
// Sessions are given per class of interchangeable nodes (bgp.Analysis), never per node pair,
// so that the document stays linear in the cluster's size. With a cache (nil: none), each
// node's entry is converted for the policies once and kept while the node, its AS number and
// its class stay the same.
func clusterData(s *model.Snapshot, cache *nodeDataCache) map[string]any {
	if cache != nil {
		cache.mu.Lock()
		defer cache.mu.Unlock()
	}
	t, a := s.Topology, s.Analysis
	names := s.State.NodeNames()
	var next map[nodeDataKey]nodeDataEntry
	if cache != nil {
		next = make(map[nodeDataKey]nodeDataEntry, len(names))
	}
	nodes := make(map[string]any, len(names))
	type zone struct {
		nodes      int64
		reflectors []string
	}
	zones := map[string]*zone{}
	reflectors := []string{}
	for _, name := range names {
		i := s.State.NodeIndex(name)
		m := t.Nodes[i]
		z := m.Labels[ZoneLabel]
		class := -1
		if i < len(a.ClassOf) {
			class = a.ClassOf[i]
		}
		as := int64(t.NodeAS(m))
		key := nodeDataKey{name, s.State.Node(name)}
		if e, ok := cache.get(key); ok && e.as == as && e.class == int64(class) {
			nodes[name] = e.v
			next[key] = e
		} else {
			labels := m.Labels
			if labels == nil {
				labels = map[string]string{}
			}
			doc := map[string]any{
				"name": name, "labels": labels, "clusterID": m.ClusterID, "asNumber": as,
				"ipv4Address": m.IPv4, "ipv6Address": m.IPv6, "zone": z, "ready": m.Ready,
				"reflector": m.ClusterID != "", "class": int64(class),
			}
			nodes[name] = doc
			if cache != nil {
				if v, err := policy.Convert(doc); err == nil {
					nodes[name] = v
					next[key] = nodeDataEntry{as: as, class: int64(class), v: v}
				}
			}
		}
		if m.ClusterID != "" {
			reflectors = append(reflectors, name)
		}
		if z == "" {
			continue
		}
		zd := zones[z]
		if zd == nil {
			zd = &zone{reflectors: []string{}}
			zones[z] = zd
		}
		zd.nodes++
		if m.ClusterID != "" {
			zd.reflectors = append(zd.reflectors, name)
		}
	}
	zoneDoc := make(map[string]any, len(zones))
	for name, z := range zones {
		zoneDoc[name] = map[string]any{"nodes": z.nodes, "reflectors": z.reflectors}
	}
	classes := make([]any, len(a.Classes))
	for c := range a.Classes {
		cl := &a.Classes[c]
		members := make([]string, len(cl.Members))
		for j, m := range cl.Members {
			members[j] = t.Nodes[m].Name
		}
		slices.Sort(members)
		sessions := map[string]any{}
		for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
			with := []any{}
			for d := range a.Classes {
				if a.Session(f, c, d) {
					with = append(with, int64(d))
				}
			}
			sessions[familyKey(f)] = with
		}
		rs := reflectorsOf(s, c)
		if rs == nil {
			rs = []string{}
		}
		classes[c] = map[string]any{
			"members": members, "clusterID": cl.ClusterID, "asNumber": int64(cl.AS),
			"ipv4": sessions["ipv4"], "ipv6": sessions["ipv6"], "reflectors": rs,
		}
	}
	peers := map[string]any{}
	for _, name := range s.State.PeerNames() {
		p := s.State.Peer(name)
		peers[name] = objectData(&calico.Object{Kind: calico.KindBGPPeer, Group: p.Group, Name: name, Peer: p.BGPPeer})
	}
	configs := map[string]any{}
	for _, name := range s.State.ConfigNames() {
		c := s.State.Config(name)
		configs[name] = objectData(&calico.Object{Kind: calico.KindBGPConfiguration, Group: c.Group, Name: name, Config: c.BGPConfiguration})
	}
	filters := map[string]any{}
	for _, name := range s.State.FilterNames() {
		f := s.State.Filter(name)
		filters[name] = objectData(&calico.Object{Kind: calico.KindBGPFilter, Group: f.Group, Name: name, Filter: f.BGPFilter})
	}
	pools := map[string]any{}
	for _, name := range s.State.PoolNames() {
		p := s.State.Pool(name)
		pools[name] = objectData(&calico.Object{Kind: calico.KindIPPool, Group: p.Group, Name: name, Pool: p.IPPool})
	}
	if cache != nil {
		cache.m = next
	}
	return map[string]any{
		"nodes":          nodes,
		"zones":          zoneDoc,
		"reflectors":     reflectors,
		"peers":          peers,
		"configurations": configs,
		"filters":        filters,
		"pools":          pools,
		"config":         map[string]any{"meshEnabled": s.State.Mesh(), "asNumber": int64(s.State.GlobalAS())},
		"sessions":       map[string]any{"classes": classes},
	}
}

// nodeDataCache keeps the nodes' entries of data.rrguard.cluster converted for the policies
// from one snapshot to the next (the snapshots after a change share the unchanged nodes). It
// holds the nodes of the last snapshot only.
type nodeDataCache struct {
	mu sync.Mutex
	m  map[nodeDataKey]nodeDataEntry
}

// nodeDataKey is a node's identity: its name and the decoded node, which is never modified.
type nodeDataKey struct {
	name string
	node *calico.Node
}

// nodeDataEntry is a node's entry converted, with the AS number and class it was built with
// (they depend on the rest of the state too).
type nodeDataEntry struct {
	as, class int64
	v         *policy.Converted
}

func (c *nodeDataCache) get(k nodeDataKey) (nodeDataEntry, bool) {
	if c == nil {
		return nodeDataEntry{}, false
	}
	e, ok := c.m[k]
	return e, ok
}

func familyKey(f bgp.Family) string {
	if f == bgp.IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// objectData is an object in projectcalico.org/v3 form, whatever group (or core Node) it came
// in: for a Node, metadata.labels is the Calico label set and spec.bgp holds the BGP fields
// as written (asNumber as a number when it parses). nil for nil.
func objectData(o *calico.Object) map[string]any {
	if o == nil {
		return nil
	}
	meta := map[string]any{"name": o.Name}
	var spec map[string]any
	switch {
	case o.Node != nil:
		n := o.Node
		meta["labels"] = n.Labels()
		b := map[string]any{}
		for k, v := range map[string]string{"ipv4Address": n.IPv4Address, "ipv6Address": n.IPv6Address, "routeReflectorClusterID": n.ClusterID} {
			if v != "" {
				b[k] = v
			}
		}
		if n.ASNumber != "" {
			if as, err := calico.ParseASN(n.ASNumber); err == nil {
				b["asNumber"] = int64(as)
			} else {
				b["asNumber"] = n.ASNumber
			}
		}
		spec = map[string]any{}
		if len(b) > 0 {
			spec["bgp"] = b
		}
	case o.Peer != nil:
		spec = jsonObject(o.Peer.Spec)
		if len(o.Peer.Labels) > 0 {
			meta["labels"] = o.Peer.Labels
		}
	case o.Config != nil:
		spec = jsonObject(o.Config.Spec)
		if len(o.Config.Labels) > 0 {
			meta["labels"] = o.Config.Labels
		}
	case o.Filter != nil:
		spec = jsonObject(o.Filter.Spec)
		if len(o.Filter.Labels) > 0 {
			meta["labels"] = o.Filter.Labels
		}
	case o.Pool != nil:
		spec = jsonObject(o.Pool.Spec)
		if len(o.Pool.Labels) > 0 {
			meta["labels"] = o.Pool.Labels
		}
	}
	return map[string]any{"apiVersion": "projectcalico.org/v3", "kind": o.Kind, "metadata": meta, "spec": spec}
}

// jsonObject is v as JSON decodes it, numbers kept exact.
func jsonObject(v any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	if dec.Decode(&out) != nil || out == nil {
		return map[string]any{}
	}
	return out
}
