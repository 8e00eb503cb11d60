package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// CalicoModule is the Go module whose libcalico-go/config/crd holds Calico's CRDs; the harness
// takes them from the module cache at the version go.mod pins, so they never drift from the
// Go types rrguard decodes with.
const CalicoModule = "github.com/projectcalico/calico"

// CalicoPlurals are the Calico resources whose CRDs the harness installs, in both groups: the
// BGP objects rrguard judges, and what else calico-node's confd reads in Kubernetes-datastore
// mode to render bird.cfg (its bgpsyncer lists IPPools, BGPConfigurations, Nodes, BGPPeers,
// BGPFilters and the node's BlockAffinities; test/bird runs it against this API server).
var CalicoPlurals = []string{"bgpconfigurations", "bgpfilters", "bgppeers", "blockaffinities", "ippools"}

// CalicoCRDs returns Calico's crd.projectcalico.org/v1 CRDs of CalicoPlurals, read from the
// pinned github.com/projectcalico/calico module, each followed by its projectcalico.org/v3
// twin (see V3CRD).
func CalicoCRDs(rootDir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := ModuleDir(rootDir, CalicoModule)
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, plural := range CalicoPlurals {
		path := filepath.Join(dir, "libcalico-go", "config", "crd", "crd.projectcalico.org_"+plural+".yaml")
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read Calico's %s CRD: %w", plural, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		v3, err := V3CRD(crd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, crd, v3)
	}
	return out, nil
}

// V3CRD derives the projectcalico.org/v3 CRD of a resource from its crd.projectcalico.org/v1
// CRD: the same schema, served as group projectcalico.org, version v3.
//
// Derived rather than generated with controller-gen from github.com/projectcalico/api: Calico
// generates its v1 CRDs with controller-gen from exactly those v3 Go types (libcalico-go's
// crd.projectcalico.org/v1 BGPPeer embeds the api module's v3.BGPPeerSpec), so the schema is the
// same; the scope and other resource markers live only in libcalico-go's wrappers, so
// controller-gen run on the api module would make these cluster-scoped kinds namespaced; and a
// fresh machine would first have to fetch and build a pinned controller-gen.
func V3CRD(v1 *apiextensionsv1.CustomResourceDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	const from, to = "crd.projectcalico.org", "projectcalico.org"
	if v1.Spec.Group != from || len(v1.Spec.Versions) != 1 || v1.Spec.Versions[0].Name != "v1" {
		return nil, fmt.Errorf("CRD %q: want one version v1 of group %s", v1.Name, from)
	}
	v3 := v1.DeepCopy()
	v3.Spec.Group = to
	v3.Name = v3.Spec.Names.Plural + "." + to
	v3.Spec.Versions[0].Name = "v3"
	return v3, nil
}

// ModuleDir returns the directory of a module of the build list of the module in rootDir, in
// the module cache; it downloads the module (from GOPROXY) when the cache does not hold it yet.
func ModuleDir(rootDir, module string) (string, error) {
	dir, err := goCmd(rootDir, "list", "-m", "-f", "{{.Dir}}", module)
	if err == nil && dir == "" {
		if _, err = goCmd(rootDir, "mod", "download", module); err == nil {
			dir, err = goCmd(rootDir, "list", "-m", "-f", "{{.Dir}}", module)
		}
	}
	if err == nil && dir == "" {
		err = fmt.Errorf("go list -m %s: no directory", module)
	}
	return dir, err
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Build builds the command package pkg of the module in rootDir (e.g. "./cmd/rrguard") into
// dir and returns the binary's path: tests that run rrguard's binaries as a user would.
func Build(rootDir, pkg, dir string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	if _, err := goCmd(rootDir, "build", "-o", bin, pkg); err != nil {
		return "", err
	}
	return bin, nil
}
