package rrguard.policies["cluster-id-scheme"]

import rego.v1

cluster := {
	"reflectors": ["rr-a1", "rr-b1"],
	"nodes": {
		"rr-a1": {"zone": "a", "clusterID": "1.0.0.1"},
		"rr-b1": {"zone": "b", "clusterID": "1.0.0.2"},
	},
}

node(name, zone, cid) := {"kind": "Node", "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}, "spec": {"bgp": {"routeReflectorClusterID": cid}}}

new(name, zone, cid) := {"operation": "UPDATE", "kind": "Node", "object": node(name, zone, cid), "oldObject": node(name, zone, "")}

test_per_zone_is_the_default if {
	count(deny) == 0 with input as new("rr-a2", "a", "1.0.0.1") with data.rrguard.cluster as cluster
	some d in deny with input as new("rr-a2", "a", "1.0.0.3") with data.rrguard.cluster as cluster
	contains(d.msg, `zone "a" use 1.0.0.1`)
}

test_per_zone_id_reused_in_other_zone if {
	some d in deny with input as new("rr-c1", "c", "1.0.0.1") with data.rrguard.cluster as cluster
	contains(d.msg, "zone(s) a")
}

test_per_zone_new_zone_new_id if {
	count(deny) == 0 with input as new("rr-c1", "c", "1.0.0.3") with data.rrguard.cluster as cluster
}

test_shared if {
	p := {"cluster-id-scheme": {"scheme": "shared"}}
	shared := {"reflectors": ["rr-1"], "nodes": {"rr-1": {"zone": "", "clusterID": "1.0.0.1"}}}
	count(deny) == 0 with input as new("rr-2", "", "1.0.0.1") with data.rrguard.cluster as shared with data.rrguard.params as p
	count(deny) == 1 with input as new("rr-2", "", "1.0.0.2") with data.rrguard.cluster as shared with data.rrguard.params as p
}

test_unique if {
	p := {"cluster-id-scheme": {"scheme": "unique"}}
	count(deny) == 1 with input as new("rr-a2", "a", "1.0.0.1") with data.rrguard.cluster as cluster with data.rrguard.params as p
	count(deny) == 0 with input as new("rr-a2", "a", "1.0.0.9") with data.rrguard.cluster as cluster with data.rrguard.params as p
}

test_unknown_scheme if {
	p := {"cluster-id-scheme": {"scheme": "zonal"}}
	some d in deny with input as new("rr-a2", "a", "1.0.0.1") with data.rrguard.cluster as cluster with data.rrguard.params as p
	contains(d.msg, "zonal")
}

test_unchanged_id_not_judged if {
	count(deny) == 0 with input as {"operation": "UPDATE", "kind": "Node", "object": node("rr-a2", "a", "1.0.0.7"), "oldObject": node("rr-a2", "a", "1.0.0.7")}
		with data.rrguard.cluster as cluster
}

test_audit_judges_every_reflector if {
	count(deny) == 1 with input as {"operation": "AUDIT", "kind": "Node", "object": node("rr-b1", "a", "1.0.0.2")}
		with data.rrguard.cluster as {"reflectors": ["rr-a1", "rr-b1"], "nodes": {"rr-a1": {"zone": "a", "clusterID": "1.0.0.1"}, "rr-b1": {"zone": "a", "clusterID": "1.0.0.2"}}}
}

test_clients_ignored if {
	count(deny) == 0 with input as new("w1", "a", "") with data.rrguard.cluster as cluster
}
