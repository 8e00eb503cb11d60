# METADATA
# title: rrguard helpers
# description: Functions over data.rrguard.cluster for rrguard policies (import data.rrguard.lib).
package rrguard.lib

import rego.v1

# session(a, b) is true when nodes a and b have a BGP session (IPv4 or IPv6).
session(a, b) if {
	a != b
	ca := data.rrguard.cluster.nodes[a].class
	cb := data.rrguard.cluster.nodes[b].class
	ca >= 0
	cb >= 0
	some family in ["ipv4", "ipv6"]
	cb in data.rrguard.cluster.sessions.classes[ca][family]
}

# reflectors_of(n) is the set of reflectors node n is a route-reflector client of.
reflectors_of(n) := {r | some r in data.rrguard.cluster.sessions.classes[c].reflectors} if {
	c := data.rrguard.cluster.nodes[n].class
	c >= 0
} else := set()

# ready_reflectors(zone) is the set of Ready reflectors in a topology.kubernetes.io/zone.
ready_reflectors(zone) := {r |
	some r in data.rrguard.cluster.zones[zone].reflectors
	data.rrguard.cluster.nodes[r].ready
}

# object_name is the name of the object under review (the old one on DELETE).
object_name := input.object.metadata.name

object_name := input.oldObject.metadata.name if not input.object

# changed(path) is true when the value at path (an array of keys) differs between oldObject
# and object: a policy that reports only what a change introduces checks it first. For
# AUDIT and CREATE every present field counts as changed.
changed(path) if {
	not input.oldObject
	object.get(input.object, path, null) != null
}

changed(path) if {
	input.oldObject
	object.get(input.object, path, null) != object.get(input.oldObject, path, null)
}
