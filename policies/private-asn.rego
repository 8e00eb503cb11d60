# METADATA
# title: Private AS numbers only
# description: >-
#   The cluster's own AS numbers (a node's asNumber, the BGPConfiguration asNumber) come from
#   the private ranges 64512-65534 and 4200000000-4294967294 (RFC 6996). A BGPPeer's asNumber
#   is the remote side's and is not checked. Admission reports only an AS number the change
#   sets; the audit reports every one (once over the whole state: audit).
# custom:
#   default: "off"
package rrguard.policies["private-asn"]

import data.rrguard.lib
import rego.v1

private(asn) if {
	asn >= 64512
	asn <= 65534
}

private(asn) if {
	asn >= 4200000000
	asn <= 4294967294
}

# as_number[path] is the AS number at path in the object under review.
as_number[path] := asn if {
	input.kind == "Node"
	path := ["spec", "bgp", "asNumber"]
	asn := object.get(input.object, path, null)
	is_number(asn)
}

as_number[path] := asn if {
	input.kind == "BGPConfiguration"
	path := ["spec", "asNumber"]
	asn := object.get(input.object, path, null)
	is_number(asn)
	asn != 0
}

deny contains result(input.kind, lib.object_name, path, asn) if {
	some path, asn in as_number
	lib.changed(path)
	not private(asn)
}

result(kind, name, path, asn) := {"msg": msg, "field": concat(".", path)} if {
	msg := sprintf("%s %s: AS number %d is not private: use one from 64512-65534 or 4200000000-4294967294 (RFC 6996)", [kind, name, asn])
}

# The audit: every node's and configuration's AS number at once.
audit contains {"kind": "Node", "name": o.metadata.name, "deny": result("Node", o.metadata.name, path, asn)} if {
	path := ["spec", "bgp", "asNumber"]
	some o in input.objects.Node
	asn := o.spec.bgp.asNumber
	is_number(asn)
	not private(asn)
}

audit contains {"kind": "BGPConfiguration", "name": o.metadata.name, "deny": result("BGPConfiguration", o.metadata.name, path, asn)} if {
	path := ["spec", "asNumber"]
	some o in input.objects.BGPConfiguration
	asn := o.spec.asNumber
	is_number(asn)
	asn != 0
	not private(asn)
}
