// Package mutate computes rrguard's one mutation: the reflector label auto-fill on core/v1
// Nodes, as a minimal JSON patch that the webhook and `rrguard review` both return.
package mutate

import (
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	corev1 "k8s.io/api/core/v1"
)

// AutoFilledValue is the value the auto-fill writes.
const AutoFilledValue = "true"

// Operation is one RFC 6902 JSON patch operation.
type Operation struct {
	Op    string      `json:"op"`
	Path  string      `json:"path"`
	Value interface{} `json:"value,omitempty"`
}

// ReflectorLabel returns the patch that keeps the reflector label in step with the cluster ID
// of node (old is the node before the request, nil on CREATE):
//   - a node with a cluster ID whose Calico label set (Kubernetes labels merged with
//     projectcalico.org/labels) lacks the label gets it, with value "true", in its Kubernetes labels;
//   - a node whose cluster ID was removed loses the Kubernetes label if it holds the
//     auto-filled value (a value the user chose is left alone).
//
// The patch is empty when nothing needs to change, so applying it again changes nothing.
func ReflectorLabel(old, node *corev1.Node, label string) []Operation {
	n := calico.NodeFromCore(node)
	if n.IsReflector() {
		if _, ok := n.Label(label); ok {
			return nil
		}
		if len(node.Labels) == 0 {
			// An empty map is left out of the JSON: add the whole map.
			return []Operation{{Op: "add", Path: "/metadata/labels", Value: map[string]string{label: AutoFilledValue}}}
		}
		return []Operation{{Op: "add", Path: "/metadata/labels/" + escape(label), Value: AutoFilledValue}}
	}
	if old == nil || !calico.NodeFromCore(old).IsReflector() {
		return nil
	}
	if v, ok := node.Labels[label]; ok && v == AutoFilledValue {
		return []Operation{{Op: "remove", Path: "/metadata/labels/" + escape(label)}}
	}
	return nil
}

// Apply applies a ReflectorLabel patch to a copy of node.
func Apply(node *corev1.Node, ops []Operation, label string) *corev1.Node {
	if len(ops) == 0 {
		return node
	}
	out := node.DeepCopy()
	for _, op := range ops {
		switch op.Op {
		case "add":
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[label] = AutoFilledValue
		case "remove":
			delete(out.Labels, label)
		}
	}
	return out
}

// escape escapes a label key for a JSON pointer (RFC 6901).
func escape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
