package validate

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
)

// ZoneLabel is the label that names a node's zone in the policies' cluster data.
const ZoneLabel = "topology.kubernetes.io/zone"

// clusterData is data.rrguard.cluster: the state as policies see it (see docs/policies.md).
// Sessions are given per class of interchangeable nodes (bgp.Analysis), never per node pair,
// so that the document stays linear in the cluster's size.
func clusterData(s *Snapshot) map[string]any {
	t, a := s.Topology, s.Analysis
	names := s.State.NodeNames()
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
		labels := m.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		nodes[name] = map[string]any{
			"name": name, "labels": labels, "clusterID": m.ClusterID, "asNumber": int64(t.NodeAS(m)),
			"ipv4Address": m.IPv4, "ipv6Address": m.IPv6, "zone": z, "ready": m.Ready,
			"reflector": m.ClusterID != "", "class": int64(class),
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
	return map[string]any{
		"nodes":          nodes,
		"zones":          zoneDoc,
		"reflectors":     reflectors,
		"peers":          peers,
		"configurations": configs,
		"config":         map[string]any{"meshEnabled": s.State.Mesh(), "asNumber": int64(s.State.GlobalAS())},
		"sessions":       map[string]any{"classes": classes},
	}
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
