# METADATA
# title: One cluster-ID scheme
# description: >-
#   Route-reflector cluster IDs follow the scheme set in data.rrguard.params["cluster-id-scheme"].scheme:
#   "per-zone" (the default: reflectors of one topology.kubernetes.io/zone share an ID, other
#   zones use other IDs), "shared" (one ID for all reflectors) or "unique" (one ID per
#   reflector). Admission checks a node whose cluster ID (or, per zone, zone) changes against
#   the other reflectors; the audit checks every reflector (once over the whole state: audit).
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

# others(name)[r] is the cluster ID of every reflector but name.
others(name) := {r: n.clusterID |
	some r in data.rrguard.cluster.reflectors
	r != name
	n := data.rrguard.cluster.nodes[r]
}

field := "spec.bgp.routeReflectorClusterID"

deny contains {"msg": msg, "field": field} if {
	judged
	some msg in problems(name, cid, zone)
}

# The audit: every reflector.
audit contains {"kind": "Node", "name": n, "deny": {"msg": msg, "field": field}} if {
	some o in input.objects.Node
	c := o.spec.bgp.routeReflectorClusterID
	c != ""
	n := o.metadata.name
	some msg in problems(n, c, object.get(o, zone_path, ""))
}

# problems(name, cid, zone) is what the scheme says of reflector name with cluster ID cid in zone.
problems(name, cid, zone) := ((bad_scheme | shared(name, cid)) | unique(name, cid)) | per_zone(name, cid, zone)

bad_scheme := {msg |
	not scheme in schemes
	msg := sprintf(`params cluster-id-scheme.scheme is %v: use "per-zone", "shared" or "unique"`, [scheme])
}

shared(name, cid) := {msg |
	scheme == "shared"
	ids := {id | some id in others(name)}
	count(ids) > 0
	not cid in ids
	msg := sprintf("node %s: cluster ID %s, but the other reflectors use %s (scheme shared: one ID for all)", [name, cid, concat(", ", sort(ids))])
}

unique(name, cid) := {msg |
	scheme == "unique"
	same := [r | some r, id in others(name); id == cid]
	count(same) > 0
	msg := sprintf("node %s: cluster ID %s is already used by %s (scheme unique: one ID per reflector)", [name, cid, concat(", ", sort(same))])
}

per_zone(name, cid, zone) := {msg | scheme == "per-zone"; some msg in per_zone_problems(name, cid, zone)}

per_zone_problems(name, cid, zone) := {msg |
	ids := {id | some r, id in others(name); data.rrguard.cluster.nodes[r].zone == zone}
	count(ids) > 0
	not cid in ids
	msg := sprintf("node %s: cluster ID %s, but the reflectors of zone %q use %s (scheme per-zone)", [name, cid, zone, concat(", ", sort(ids))])
} | {msg |
	zones := {z | some r, id in others(name); id == cid; z := data.rrguard.cluster.nodes[r].zone; z != zone}
	count(zones) > 0
	msg := sprintf("node %s: cluster ID %s is used in zone(s) %s too (scheme per-zone: one ID per zone)", [name, cid, concat(", ", sort(zones))])
}
