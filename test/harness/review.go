package harness

import (
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// UpdateReview is the admission.k8s.io/v1 AdmissionReview, as JSON, that the API server sends a
// webhook for the UPDATE of old to updated: for tests that post to a webhook directly, without
// the API server in between. resource is the updated object's resource ("bgppeers").
func UpdateReview(uid string, old, updated *unstructured.Unstructured, resource string) ([]byte, error) {
	oldRaw, err := json.Marshal(old.Object)
	if err != nil {
		return nil, err
	}
	newRaw, err := json.Marshal(updated.Object)
	if err != nil {
		return nil, err
	}
	gvk := updated.GroupVersionKind()
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Operation: admissionv1.Update, Name: updated.GetName(),
			Kind:     metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource: metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource},
			Object:   runtime.RawExtension{Raw: newRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		},
	})
}
