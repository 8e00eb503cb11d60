package calico

import corev1 "k8s.io/api/core/v1"

// NodeObject wraps a core/v1 Node as the Object a decoder would return for it.
func NodeObject(k *corev1.Node) *Object {
	return &Object{Kind: KindNode, Name: k.Name, CoreNode: k, Node: NodeFromCore(k)}
}
