// Package layers checks that rrguard's packages import only from the layers below their own,
// as ARCHITECTURE.md draws them: the map must stay true to the code.
package layers

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/rrguard/rrguard/"

// layers lists rrguard's library packages from the bottom up; a package imports only
// packages of layers below its own. Keep ARCHITECTURE.md's table in step with it.
var layers = [][]string{
	{"pkg/selector", "policies", "internal/scenario"},
	{"pkg/bgp", "pkg/policy"},
	{"pkg/calico"},
	{"pkg/model"},
	{"pkg/cluster", "pkg/validate", "pkg/mutate"},
	{"pkg/admission", "pkg/report"},
	{"pkg/audit", "pkg/graph", "pkg/plan"},
	{"pkg/controller"},
	{"pkg/webhook"},
}

// above are the packages that may import any library package: commands, the test support
// and tests, the build tools.
var above = []string{"cmd/", "hack/", "test/", "internal/scenario/live", "pkg/admission/admissiontest", "pkg/validate/validatetest", "pkg/policy/policytest"}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "-tags", "e2e", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	layerOf := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layerOf[p] = i
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		if isAbove(name) {
			continue
		}
		own, ok := layerOf[name]
		if !ok {
			t.Errorf("package %s is in no layer: add it to layers (and to ARCHITECTURE.md)", name)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if isAbove(dep) {
				t.Errorf("%s (layer %d) imports %s, which is test or command code", name, own, dep)
				continue
			}
			if l, ok := layerOf[dep]; ok && l >= own {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only from the layers below its own", name, own, dep, l)
			}
		}
	}
	if seen < 15 {
		t.Errorf("only %d library packages checked", seen)
	}
}

func isAbove(name string) bool {
	for _, a := range above {
		if name == strings.TrimSuffix(a, "/") || strings.HasPrefix(name, a) {
			return true
		}
	}
	return false
}
