package rrguard.policies["private-asn"]

import rego.v1

node(asn) := {"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"bgp": {"ipv4Address": "10.0.0.1/24", "asNumber": asn}}}

config(asn) := {"apiVersion": "projectcalico.org/v3", "kind": "BGPConfiguration", "metadata": {"name": "default"}, "spec": {"asNumber": asn}}

test_private_ranges_pass if {
	every asn in [64512, 65000, 65534, 4200000000, 4294967294] {
		count(deny) == 0 with input as {"operation": "CREATE", "kind": "Node", "object": node(asn)}
	}
}

test_public_node_as_denied if {
	some d in deny with input as {"operation": "CREATE", "kind": "Node", "object": node(63400)}
	d.field == "spec.bgp.asNumber"
	contains(d.msg, "63400")
}

test_range_edges_denied if {
	every asn in [64511, 65535, 4199999999, 4294967295] {
		count(deny) == 1 with input as {"operation": "CREATE", "kind": "BGPConfiguration", "object": config(asn)}
	}
}

test_unchanged_public_as_not_blamed_on_update if {
	count(deny) == 0 with input as {"operation": "UPDATE", "kind": "BGPConfiguration", "object": config(63400), "oldObject": config(63400)}
}

test_changed_to_public_as_denied_on_update if {
	count(deny) == 1 with input as {"operation": "UPDATE", "kind": "BGPConfiguration", "object": config(63400), "oldObject": config(64512)}
}

test_audit_reports_existing if {
	count(deny) == 1 with input as {"operation": "AUDIT", "kind": "Node", "object": node(1)}
}

test_unset_as_ignored if {
	count(deny) == 0 with input as {"operation": "CREATE", "kind": "Node", "object": {"metadata": {"name": "n1"}, "spec": {}}}
}

test_peer_remote_as_ignored if {
	count(deny) == 0 with input as {"operation": "CREATE", "kind": "BGPPeer", "object": {"metadata": {"name": "tor"}, "spec": {"peerIP": "192.0.2.1", "asNumber": 174}}}
}
