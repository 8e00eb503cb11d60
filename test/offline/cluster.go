// Package offline plays acceptance scenarios without an API server: it keeps the objects a
// cluster would store, turns each step into the AdmissionRequest the API server would send
// (calicoctl's nodes/status UPDATE, kubectl's PATCH of nodes, apply and delete of BGP
// objects), and answers it with the same Reviewer the webhook uses.
package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// Cluster is the stored objects, keyed by "Kind/name" (the API group does not matter for
// identity: Calico's two groups are views of the same objects).
type Cluster struct {
	objects map[string]*unstructured.Unstructured
}

// NewCluster stores the initial objects as they are, bypassing admission.
func NewCluster(initial []*unstructured.Unstructured) *Cluster {
	c := &Cluster{objects: map[string]*unstructured.Unstructured{}}
	for _, o := range initial {
		c.objects[key(o)] = o.DeepCopy()
	}
	return c
}

func key(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

// State decodes the stored objects.
func (c *Cluster) State() (*calico.State, error) {
	keys := make([]string, 0, len(c.objects))
	for k := range c.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var objs []*calico.Object
	for _, k := range keys {
		o, err := calico.Decode(c.objects[k])
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return calico.NewState(objs), nil
}

// Request builds the AdmissionRequest that doing the step sends to the webhook.
func (c *Cluster) Request(step scenario.Step) (*admissionv1.AdmissionRequest, error) {
	obj := step.Object
	if step.Via == "calicoctl" && obj.GetAPIVersion() == "projectcalico.org/v3" && obj.GetKind() != calico.KindNode {
		obj = scenario.CalicoctlStored(obj) // what calicoctl writes on a Kubernetes datastore
	}
	gvk := obj.GroupVersionKind()
	req := &admissionv1.AdmissionRequest{
		UID: types.UID("offline"), Name: obj.GetName(),
		Kind:     metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
		Resource: metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"},
	}
	stored := c.objects[key(obj)]
	if gvk.Group == calico.GroupV3 && gvk.Kind == calico.KindNode {
		// A Calico v3 Node lives on the core/v1 Node.
		stored = c.objects[calico.KindNode+"/"+obj.GetName()]
		if stored == nil {
			return nil, fmt.Errorf("no Node %q to apply %s to", obj.GetName(), step.Name)
		}
		current, err := toCore(stored)
		if err != nil {
			return nil, err
		}
		var updated *corev1.Node
		if step.Via == "kubectl" {
			updated, err = calico.NodeUpdateKubectl(current, obj)
		} else {
			updated, err = calico.NodeUpdateCalicoctl(current, obj)
			req.SubResource = "status"
		}
		if err != nil {
			return nil, err
		}
		req.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "Node"}
		req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "nodes"}
		req.Operation = admissionv1.Update
		return withObjects(req, updated, current)
	}
	switch {
	case step.Do == "delete":
		if stored == nil {
			return nil, fmt.Errorf("step %q deletes %s, which does not exist", step.Name, key(obj))
		}
		req.Operation = admissionv1.Delete
		return withObjects(req, nil, stored)
	case stored == nil:
		req.Operation = admissionv1.Create
		return withObjects(req, obj, nil)
	case gvk.Kind == calico.KindNode:
		// kubectl apply of a Node the user did not create with apply: labels and annotations
		// are merged in, the rest (status) stays.
		merged := stored.DeepCopy()
		labels, annotations := merged.GetLabels(), merged.GetAnnotations()
		if labels == nil {
			labels = map[string]string{}
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		maps.Copy(labels, obj.GetLabels())
		maps.Copy(annotations, obj.GetAnnotations())
		merged.SetLabels(labels)
		merged.SetAnnotations(annotations)
		req.Operation = admissionv1.Update
		return withObjects(req, merged, stored)
	default:
		req.Operation = admissionv1.Update
		return withObjects(req, obj, stored)
	}
}

func toCore(u *unstructured.Unstructured) (*corev1.Node, error) {
	raw, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var n corev1.Node
	return &n, json.Unmarshal(raw, &n)
}

func withObjects(req *admissionv1.AdmissionRequest, obj, old interface{}) (*admissionv1.AdmissionRequest, error) {
	for _, x := range []struct {
		in  interface{}
		out *[]byte
	}{{obj, &req.Object.Raw}, {old, &req.OldObject.Raw}} {
		if x.in == nil {
			continue
		}
		if u, ok := x.in.(*unstructured.Unstructured); ok && u == nil {
			continue
		}
		if n, ok := x.in.(*corev1.Node); ok {
			n.APIVersion, n.Kind = "v1", "Node"
		}
		raw, err := json.Marshal(x.in)
		if err != nil {
			return nil, err
		}
		*x.out = raw
	}
	return req, nil
}

// Do reviews the step and, when it is allowed, stores its result (mutation included).
func (c *Cluster) Do(r *admission.Reviewer, step scenario.Step) (*admissionv1.AdmissionResponse, error) {
	req, err := c.Request(step)
	if err != nil {
		return nil, err
	}
	state, err := c.State()
	if err != nil {
		return nil, err
	}
	snap := model.NewSnapshot(state)
	if step.Via == "calicoctl" && req.Operation == admissionv1.Update && req.Kind.Group == calico.GroupCRD {
		// calicoctl apply tries a CREATE first, which admission judges before the storage
		// finds the object exists; only then comes the UPDATE.
		create := *req
		create.Operation, create.OldObject.Raw = admissionv1.Create, nil
		if resp := r.Review(context.Background(), &create, snap); !resp.Allowed {
			return resp, nil
		}
	}
	resp := r.Review(context.Background(), req, snap)
	if !resp.Allowed {
		return resp, nil
	}
	if req.Operation == admissionv1.Delete {
		var old unstructured.Unstructured
		if err := old.UnmarshalJSON(req.OldObject.Raw); err != nil {
			return nil, err
		}
		delete(c.objects, key(&old))
		return resp, nil
	}
	raw := req.Object.Raw
	if len(resp.Patch) > 0 {
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			return nil, err
		}
		if raw, err = p.Apply(raw); err != nil {
			return nil, fmt.Errorf("apply rrguard's patch %s: %w", resp.Patch, err)
		}
	}
	var stored unstructured.Unstructured
	if err := stored.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	c.objects[key(&stored)] = &stored
	return resp, nil
}

// NodeLabels returns the Calico label set of a stored node.
func (c *Cluster) NodeLabels(name string) (map[string]string, error) {
	u := c.objects[calico.KindNode+"/"+name]
	if u == nil {
		return nil, fmt.Errorf("no Node %q", name)
	}
	n, err := toCore(u)
	if err != nil {
		return nil, err
	}
	return calico.NodeFromCore(n).Labels(), nil
}

// RuleIDs returns the rule IDs named in a response's denial causes and in its warnings.
func RuleIDs(resp *admissionv1.AdmissionResponse) (denied, warned []string) {
	if resp.Result != nil && resp.Result.Details != nil {
		for _, c := range resp.Result.Details.Causes {
			denied = append(denied, ruleOf(c.Message))
		}
	}
	for _, w := range resp.Warnings {
		warned = append(warned, ruleOf(w))
	}
	return denied, warned
}

func ruleOf(msg string) string {
	if strings.HasPrefix(msg, "[") {
		if i := strings.Index(msg, "]"); i > 0 {
			return msg[1:i]
		}
	}
	return ""
}
