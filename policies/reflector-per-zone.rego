# METADATA
# title: A Ready reflector in every zone
# description: >-
#   With the node-to-node mesh off, every topology.kubernetes.io/zone that has nodes keeps at
#   least one Ready route reflector, so that losing a zone's link to the others does not cut
#   its nodes off. Admission refuses turning the mesh off onto a zone without one, and taking
#   away (clearing the cluster ID, deleting, moving) the last Ready reflector of a zone; it
#   warns when a node joins a zone that has none. The audit reports every such zone on the
#   default BGPConfiguration (once over the whole state: audit).
# custom:
#   default: "off"
package rrguard.policies["reflector-per-zone"]

import data.rrguard.lib
import rego.v1

zone_label := "topology.kubernetes.io/zone"

cluster := data.rrguard.cluster

mesh_off_before if cluster.config.meshEnabled == false

zone_of(obj) := object.get(obj, ["metadata", "labels", zone_label], "")

# The node under review, before and after the change.
old_zone := zone_of(input.oldObject) if {
	input.oldObject
} else := cluster.nodes[lib.object_name].zone if {
	cluster.nodes[lib.object_name]
} else := ""

new_zone := zone_of(input.object) if {
	input.object
} else := ""

# The node counts as a Ready reflector of new_zone after the change.
reflector_after if {
	object.get(input.object, ["spec", "bgp", "routeReflectorClusterID"], "") != ""
	object.get(cluster.nodes, [lib.object_name, "ready"], true)
}

ready_after(zone) := (lib.ready_reflectors(zone) - {lib.object_name}) | {lib.object_name} if {
	zone == new_zone
	reflector_after
} else := lib.ready_reflectors(zone) - {lib.object_name}

deny contains {"msg": msg, "field": "metadata.labels"} if {
	input.kind == "Node"
	input.operation != "AUDIT"
	mesh_off_before
	some zone in {old_zone, new_zone}
	zone != ""
	count(lib.ready_reflectors(zone)) > 0
	count(ready_after(zone)) == 0
	msg := sprintf("node %s: zone %s would be left without a Ready route reflector (the mesh is off): make another node of %s a reflector first", [lib.object_name, zone, zone])
}

warn contains {"msg": msg, "field": "metadata.labels"} if {
	input.kind == "Node"
	input.operation != "AUDIT"
	input.operation != "DELETE"
	mesh_off_before
	new_zone != ""
	new_zone != old_zone
	count(ready_after(new_zone)) == 0
	msg := sprintf("node %s joins zone %s, which has no Ready route reflector", [lib.object_name, new_zone])
}

turns_mesh_off if {
	input.kind == "BGPConfiguration"
	lib.object_name == "default"
	input.object.spec.nodeToNodeMeshEnabled == false
	input.operation != "AUDIT"
	not mesh_off_before
}

turns_mesh_off if {
	input.kind == "BGPConfiguration"
	lib.object_name == "default"
	input.object.spec.nodeToNodeMeshEnabled == false
	input.operation == "AUDIT"
}

deny contains result if {
	turns_mesh_off
	some result in zones_without_reflector
}

zones_without_reflector contains {"msg": msg, "field": "spec.nodeToNodeMeshEnabled"} if {
	some zone, z in cluster.zones
	z.nodes > 0
	count(lib.ready_reflectors(zone)) == 0
	msg := sprintf("zone %s has %d node(s) and no Ready route reflector: with the mesh off give it one (cluster ID and BGPPeers)", [zone, z.nodes])
}

# The audit: Nodes are judged only on a change; the default BGPConfiguration with the mesh off.
audit contains {"kind": "BGPConfiguration", "name": "default", "deny": result} if {
	some o in input.objects.BGPConfiguration
	o.metadata.name == "default"
	o.spec.nodeToNodeMeshEnabled == false
	some result in zones_without_reflector
}
