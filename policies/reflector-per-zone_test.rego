package rrguard.policies["reflector-per-zone"]

import rego.v1

# Two zones; a has reflectors rr-a1 (Ready) and rr-a2 (NotReady), b has rr-b1; c has none.
zoned := {
	"config": {"meshEnabled": false, "asNumber": 64512},
	"nodes": {
		"rr-a1": {"zone": "a", "ready": true, "clusterID": "1.0.0.1"},
		"rr-a2": {"zone": "a", "ready": false, "clusterID": "1.0.0.1"},
		"rr-b1": {"zone": "b", "ready": true, "clusterID": "1.0.0.1"},
		"w-a": {"zone": "a", "ready": true, "clusterID": ""},
		"w-c": {"zone": "c", "ready": true, "clusterID": ""},
	},
	"zones": {
		"a": {"nodes": 3, "reflectors": ["rr-a1", "rr-a2"]},
		"b": {"nodes": 1, "reflectors": ["rr-b1"]},
		"c": {"nodes": 1, "reflectors": []},
	},
}

mesh_on := object.union(zoned, {"config": {"meshEnabled": true}})

node(name, zone, cid) := {"kind": "Node", "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}, "spec": {"bgp": {"ipv4Address": "10.0.0.1/24", "routeReflectorClusterID": cid}}}

test_clearing_last_ready_reflector_denied if {
	some d in deny with input as {"operation": "UPDATE", "kind": "Node", "object": node("rr-a1", "a", ""), "oldObject": node("rr-a1", "a", "1.0.0.1")}
		with data.rrguard.cluster as zoned
	contains(d.msg, "zone a")
}

test_deleting_last_reflector_denied if {
	count(deny) == 1 with input as {"operation": "DELETE", "kind": "Node", "oldObject": node("rr-b1", "b", "1.0.0.1")}
		with data.rrguard.cluster as zoned
}

test_moving_last_reflector_denied if {
	count(deny) == 1 with input as {"operation": "UPDATE", "kind": "Node", "object": node("rr-b1", "a", "1.0.0.1"), "oldObject": node("rr-b1", "b", "1.0.0.1")}
		with data.rrguard.cluster as zoned
}

test_relabelling_a_reflector_keeps_it if {
	count(deny) == 0 with input as {"operation": "UPDATE", "kind": "Node", "object": node("rr-b1", "b", "1.0.0.2"), "oldObject": node("rr-b1", "b", "1.0.0.1")}
		with data.rrguard.cluster as zoned
}

test_worker_change_allowed if {
	count(deny) == 0 with input as {"operation": "UPDATE", "kind": "Node", "object": node("w-a", "a", ""), "oldObject": node("w-a", "a", "")}
		with data.rrguard.cluster as zoned
}

test_mesh_on_no_opinion if {
	count(deny) == 0 with input as {"operation": "DELETE", "kind": "Node", "oldObject": node("rr-b1", "b", "1.0.0.1")}
		with data.rrguard.cluster as mesh_on
}

test_joining_zone_without_reflector_warns if {
	some w in warn with input as {"operation": "UPDATE", "kind": "Node", "object": node("w-a", "c", ""), "oldObject": node("w-a", "a", "")}
		with data.rrguard.cluster as zoned
	contains(w.msg, "zone c")
}

test_already_broken_zone_not_blamed_on_unrelated_change if {
	count(deny) == 0 with input as {"operation": "UPDATE", "kind": "Node", "object": node("w-c", "c", ""), "oldObject": node("w-c", "c", "")}
		with data.rrguard.cluster as zoned
}

config(mesh) := {"kind": "BGPConfiguration", "metadata": {"name": "default"}, "spec": {"nodeToNodeMeshEnabled": mesh}}

test_mesh_off_onto_zone_without_reflector_denied if {
	some d in deny with input as {"operation": "UPDATE", "kind": "BGPConfiguration", "object": config(false), "oldObject": config(true)}
		with data.rrguard.cluster as mesh_on
	contains(d.msg, "zone c")
	d.field == "spec.nodeToNodeMeshEnabled"
}

test_audit_reports_zone_on_default if {
	count(deny) == 1 with input as {"operation": "AUDIT", "kind": "BGPConfiguration", "object": config(false)}
		with data.rrguard.cluster as zoned
}

test_audit_of_nodes_is_quiet if {
	count(deny) == 0 with input as {"operation": "AUDIT", "kind": "Node", "object": node("w-c", "c", "")}
		with data.rrguard.cluster as zoned
}
