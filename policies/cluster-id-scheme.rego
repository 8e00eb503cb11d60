# METADATA
# title: One cluster-ID scheme
# description: >-
#   Route-reflector cluster IDs follow the scheme set in data.rrguard.params["cluster-id-scheme"].scheme:
#   "per-zone" (the default: reflectors of one topology.kubernetes.io/zone share an ID, other
#   zones use other IDs), "shared" (one ID for all reflectors) or "unique" (one ID per
#   reflector). Admission checks a node whose cluster ID (or, per zone, zone) changes against
#   the other reflectors; the audit checks every reflector.
# custom:
#   default: "off"
package rrguard.policies["cluster-id-scheme"]

import data.rrguard.lib
import rego.v1

schemes := {"per-zone", "shared", "unique"}

scheme := object.get(data.rrguard.params, ["cluster-id-scheme", "scheme"], "per-zone")

cid_path := ["spec", "bgp", "routeReflectorClusterID"]

zone_path := ["metadata", "labels", "topology.kubernetes.io/zone"]

name := lib.object_name

cid := object.get(input.object, cid_path, "")

zone := object.get(input.object, zone_path, "")

# The node is worth a look: a reflector whose ID (or zone) this change sets.
judged if {
	input.kind == "Node"
	cid != ""
	lib.changed(cid_path)
}

judged if {
	input.kind == "Node"
	cid != ""
	scheme == "per-zone"
	lib.changed(zone_path)
}

# others[r] is the cluster ID of every other reflector.
others[r] := n.clusterID if {
	some r in data.rrguard.cluster.reflectors
	r != name
	n := data.rrguard.cluster.nodes[r]
}

field := "spec.bgp.routeReflectorClusterID"

deny contains {"msg": msg, "field": field} if {
	judged
	not scheme in schemes
	msg := sprintf(`params cluster-id-scheme.scheme is %v: use "per-zone", "shared" or "unique"`, [scheme])
}

deny contains {"msg": msg, "field": field} if {
	judged
	scheme == "shared"
	ids := {id | some id in others}
	count(ids) > 0
	not cid in ids
	msg := sprintf("node %s: cluster ID %s, but the other reflectors use %s (scheme shared: one ID for all)", [name, cid, concat(", ", sort(ids))])
}

deny contains {"msg": msg, "field": field} if {
	judged
	scheme == "unique"
	same := [r | some r, id in others; id == cid]
	count(same) > 0
	msg := sprintf("node %s: cluster ID %s is already used by %s (scheme unique: one ID per reflector)", [name, cid, concat(", ", sort(same))])
}

deny contains {"msg": msg, "field": field} if {
	judged
	scheme == "per-zone"
	ids := {id | some r, id in others; data.rrguard.cluster.nodes[r].zone == zone}
	count(ids) > 0
	not cid in ids
	msg := sprintf("node %s: cluster ID %s, but the reflectors of zone %q use %s (scheme per-zone)", [name, cid, zone, concat(", ", sort(ids))])
}

deny contains {"msg": msg, "field": field} if {
	judged
	scheme == "per-zone"
	zones := {z | some r, id in others; id == cid; z := data.rrguard.cluster.nodes[r].zone; z != zone}
	count(zones) > 0
	msg := sprintf("node %s: cluster ID %s is used in zone(s) %s too (scheme per-zone: one ID per zone)", [name, cid, concat(", ", sort(zones))])
}
