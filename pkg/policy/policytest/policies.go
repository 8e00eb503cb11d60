// Package policytest holds realistic user policies for rrguard's policy tests and benchmarks,
// and writes policy directories (Rego, params, tests) for them.
package policytest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir writes files (path relative to the directory to content) into a new temporary directory
// of t and returns it: a --policy-dir.
func Dir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Write(t, dir, files)
	return dir
}

// Write writes files (path relative to dir to content) into dir, making subdirectories.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Custom returns seven policies of the kind an organisation writes (file name to source);
// with the three shipped ones turned on they make the ten of the decision benchmarks. The
// four about Nodes also define audit, their findings on a whole state at once.
func Custom() map[string]string {
	return map[string]string{
		"peer-naming.rego": `package rrguard.policies["peer-naming"]

import rego.v1

deny contains {"msg": sprintf("BGPPeer %s: name it <scope>-to-<target>, lower case", [input.object.metadata.name]), "field": "metadata.name"} if {
	input.kind == "BGPPeer"
	not regex.match("^[a-z0-9]+(-[a-z0-9]+)*-to-[a-z0-9-]+$", input.object.metadata.name)
}
`,
		"no-global-peers.rego": `package rrguard.policies["no-global-peers"]

import rego.v1

deny contains {"msg": "a BGPPeer with peerIP must be scoped with node or nodeSelector", "field": "spec.nodeSelector"} if {
	input.kind == "BGPPeer"
	input.object.spec.peerIP
	not input.object.spec.node
	not input.object.spec.nodeSelector
}
`,
		"reflector-label-value.rego": `package rrguard.policies["reflector-label-value"]

import rego.v1

warn contains result(input.object) if input.kind == "Node"

audit contains {"kind": "Node", "name": o.metadata.name, "warn": result(o)} if {
	some o in input.objects.Node
	o.metadata.labels["route-reflector"]
}

result(node) := {"msg": sprintf("node %s: label route-reflector should be \"true\", not %q", [node.metadata.name, v]), "field": "metadata.labels"} if {
	v := node.metadata.labels["route-reflector"]
	v != "true"
}
`,
		"netops-only.rego": `package rrguard.policies["netops-only"]

import rego.v1

deny contains "only the netops group changes BGPConfigurations" if {
	input.kind == "BGPConfiguration"
	input.operation in {"CREATE", "UPDATE", "DELETE"}
	not "netops" in input.userInfo.groups
}
`,
		"max-reflectors-per-zone.rego": `package rrguard.policies["max-reflectors-per-zone"]

import data.rrguard.lib
import rego.v1

deny contains result(input.object) if {
	input.kind == "Node"
	input.object.spec.bgp.routeReflectorClusterID
	lib.changed(["spec", "bgp", "routeReflectorClusterID"])
}

audit contains {"kind": "Node", "name": o.metadata.name, "deny": result(o)} if {
	some o in input.objects.Node
	o.spec.bgp.routeReflectorClusterID
}

result(node) := {"msg": sprintf("zone %s already has %d reflectors", [zone, count(rrs)]), "field": "spec.bgp.routeReflectorClusterID"} if {
	zone := node.metadata.labels["topology.kubernetes.io/zone"]
	rrs := {r | some r in data.rrguard.cluster.zones[zone].reflectors; r != node.metadata.name}
	count(rrs) >= 3
}
`,
		"reflector-must-be-ready.rego": `package rrguard.policies["reflector-must-be-ready"]

import data.rrguard.lib
import rego.v1

deny contains result(input.object.metadata.name) if {
	input.kind == "Node"
	input.object.spec.bgp.routeReflectorClusterID
	lib.changed(["spec", "bgp", "routeReflectorClusterID"])
}

audit contains {"kind": "Node", "name": o.metadata.name, "deny": result(o.metadata.name)} if {
	some o in input.objects.Node
	o.spec.bgp.routeReflectorClusterID
}

result(name) := {"msg": sprintf("node %s is not Ready: do not make it a reflector", [name]), "field": "spec.bgp.routeReflectorClusterID"} if {
	data.rrguard.cluster.nodes[name].ready == false
}
`,
		"two-reflectors.rego": `package rrguard.policies["two-reflectors"]

import data.rrguard.lib
import rego.v1

warn contains result(lib.object_name) if {
	input.kind == "Node"
	data.rrguard.cluster.config.meshEnabled == false
	not input.object.spec.bgp.routeReflectorClusterID
}

# The audit counts each class's reflectors once, not once per node.
audit contains {"kind": "Node", "name": name, "warn": message(name, n)} if {
	data.rrguard.cluster.config.meshEnabled == false
	counts := {name: n |
		some class in data.rrguard.cluster.sessions.classes
		n := count({r | some r in class.reflectors})
		some name in class.members
	}
	some o in input.objects.Node
	not o.spec.bgp.routeReflectorClusterID
	name := o.metadata.name
	n := object.get(counts, name, 0) # 0: a node that takes part in nothing
	n < 2
}

result(name) := message(name, n) if {
	n := count(lib.reflectors_of(name))
	n < 2
}

message(name, n) := sprintf("node %s peers with %d reflector(s); two are the minimum", [name, n])
`,
	}
}
