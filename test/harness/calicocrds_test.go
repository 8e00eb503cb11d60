package harness

import (
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestCalicoCRDs(t *testing.T) {
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds, err := CalicoCRDs(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2*len(CalicoPlurals) {
		t.Fatalf("%d CRDs, want %d", len(crds), 2*len(CalicoPlurals))
	}
	for i := 0; i < len(crds); i += 2 {
		v1, v3 := crds[i], crds[i+1]
		plural := CalicoPlurals[i/2]
		if v1.Name != plural+".crd.projectcalico.org" || v3.Name != plural+".projectcalico.org" {
			t.Errorf("CRDs %q and %q, want %s in both groups", v1.Name, v3.Name, plural)
		}
		if v3.Spec.Group != "projectcalico.org" || v3.Spec.Versions[0].Name != "v3" || !v3.Spec.Versions[0].Served || !v3.Spec.Versions[0].Storage {
			t.Errorf("%s: group %s version %+v, want projectcalico.org v3, served and stored", v3.Name, v3.Spec.Group, v3.Spec.Versions[0])
		}
		if v3.Spec.Scope != apiextensionsv1.ClusterScoped || !reflect.DeepEqual(v3.Spec.Names, v1.Spec.Names) {
			t.Errorf("%s: scope %s names %+v, want the v1 CRD's (%s, %+v)", v3.Name, v3.Spec.Scope, v3.Spec.Names, v1.Spec.Scope, v1.Spec.Names)
		}
		if !reflect.DeepEqual(v3.Spec.Versions[0].Schema, v1.Spec.Versions[0].Schema) {
			t.Errorf("%s: schema differs from %s's", v3.Name, v1.Name)
		}
	}
}

func TestV3CRDRefusesOtherGroups(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{Spec: apiextensionsv1.CustomResourceDefinitionSpec{
		Group: "projectcalico.org", Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v3"}},
	}}
	if _, err := V3CRD(crd); err == nil {
		t.Error("V3CRD of a projectcalico.org/v3 CRD: no error")
	}
}
