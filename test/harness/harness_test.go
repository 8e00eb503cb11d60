package harness

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStartWithoutBinariesFails(t *testing.T) {
	_, err := Start(Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrMissingBinaries) || !strings.Contains(err.Error(), "make controlplane") {
		t.Fatalf("Start with an empty bin directory: %v, want an error telling to run make controlplane", err)
	}
}

func TestFindRoot(t *testing.T) {
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "test", "harness", "harness.go")); err != nil {
		t.Fatalf("FindRoot = %q: %v", root, err)
	}
}

func TestCalicoLabels(t *testing.T) {
	for name, c := range map[string]struct {
		labels, annotations, want map[string]string
		err                       bool
	}{
		"k8s labels win": {
			labels:      map[string]string{"a": "k8s", "b": "k8s"},
			annotations: map[string]string{CalicoLabelsAnnotation: `{"b":"calico","c":"calico"}`},
			want:        map[string]string{"a": "k8s", "b": "k8s", "c": "calico"},
		},
		"no annotation":   {labels: map[string]string{"a": "1"}, want: map[string]string{"a": "1"}},
		"null annotation": {annotations: map[string]string{CalicoLabelsAnnotation: "null"}, want: map[string]string{}},
		"bad annotation":  {annotations: map[string]string{CalicoLabelsAnnotation: "[1]"}, err: true},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: c.labels, Annotations: c.annotations}}
		got, err := CalicoLabels(n)
		if (err != nil) != c.err || !c.err && !maps.Equal(got, c.want) {
			t.Errorf("%s: CalicoLabels = %v, %v; want %v (error %v)", name, got, err, c.want, c.err)
		}
	}
}
