// Package scenario reads acceptance scenarios: a user's story, step by step, with the answer
// rrguard must give (format: test/scenarios/README.md). rrguard's own are in test/scenarios; the
// offline runner (test/offline), the live player (package live below) and `make demo` share them.
package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Scenario is one story.
type Scenario struct {
	Name    string
	Initial []*unstructured.Unstructured
	Steps   []Step
	Path    string
}

// Step is one thing the user does, and what rrguard must answer.
type Step struct {
	Name string
	Do   string // apply (default) or delete
	// Via is how a projectcalico.org/v3 object is written: a Node with calicoctl ("", the
	// default) or kubectl; another kind with kubectl ("", the default: the v3 API as served)
	// or calicoctl (which writes crd.projectcalico.org/v1 on a Kubernetes datastore).
	Via      string
	Object   *unstructured.Unstructured
	Expect   string // allow or deny
	Deny     []string
	Warnings []string
	After    *After
}

// After holds checks of the state after a step.
type After struct {
	// NodeLabels maps node name to label to expected value in the node's Calico label set;
	// a nil value means the label must be absent.
	NodeLabels map[string]map[string]*string `json:"nodeLabels"`
}

type file struct {
	Name    string                   `json:"name"`
	Initial []map[string]interface{} `json:"initial"`
	Steps   []struct {
		Name     string                 `json:"name"`
		Do       string                 `json:"do"`
		Via      string                 `json:"via"`
		Object   map[string]interface{} `json:"object"`
		Expect   string                 `json:"expect"`
		Deny     []string               `json:"deny"`
		Warnings []string               `json:"warnings"`
		After    *After                 `json:"after"`
	} `json:"steps"`
}

// Load reads one scenario file and checks that it is complete.
func Load(path string) (*Scenario, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f file
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	s := &Scenario{Name: f.Name, Path: path}
	for _, o := range f.Initial {
		s.Initial = append(s.Initial, &unstructured.Unstructured{Object: o})
	}
	for i, st := range f.Steps {
		step := Step{
			Name: st.Name, Do: st.Do, Via: st.Via, Expect: st.Expect,
			Deny: st.Deny, Warnings: st.Warnings, After: st.After,
		}
		if step.Do == "" {
			step.Do = "apply"
		}
		if st.Object == nil {
			return nil, fmt.Errorf("scenario %s: step %d (%q): no object", path, i+1, st.Name)
		}
		step.Object = &unstructured.Unstructured{Object: st.Object}
		switch {
		case step.Do != "apply" && step.Do != "delete":
			return nil, fmt.Errorf("scenario %s: step %d (%q): do must be apply or delete, not %q", path, i+1, st.Name, step.Do)
		case step.Via != "" && step.Via != "calicoctl" && step.Via != "kubectl":
			return nil, fmt.Errorf("scenario %s: step %d (%q): via must be calicoctl or kubectl, not %q", path, i+1, st.Name, step.Via)
		case step.Expect != "allow" && step.Expect != "deny":
			return nil, fmt.Errorf("scenario %s: step %d (%q): expect must be allow or deny, not %q", path, i+1, st.Name, step.Expect)
		}
		s.Steps = append(s.Steps, step)
	}
	return s, nil
}

// LoadDir reads every *.yaml scenario in dir, sorted by file name.
func LoadDir(dir string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*Scenario
	for _, p := range paths {
		s, err := Load(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// EnvDirs names the environment variable that lists, colon-separated, more directories whose
// scenarios every runner plays after rrguard's own: an outside acceptance set is replayed
// without changing code. Unset, none.
const EnvDirs = "RRGUARD_SCENARIOS"

// Dirs returns the scenario directories to play: rootDir/test/scenarios, then those of EnvDirs.
func Dirs(rootDir string) []string {
	dirs := []string{filepath.Join(rootDir, "test", "scenarios")}
	for _, d := range strings.Split(os.Getenv(EnvDirs), ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// LoadDirs reads the scenarios of every directory, in order. A directory that does not exist
// or holds no scenario is an error: a mistyped path must not pass as an empty acceptance set.
func LoadDirs(dirs []string) ([]*Scenario, error) {
	var out []*Scenario
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("scenario directory: %w", err)
		}
		s, err := LoadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(s) == 0 {
			return nil, fmt.Errorf("scenario directory %s: no *.yaml scenario", dir)
		}
		out = append(out, s...)
	}
	return out, nil
}

// CalicoctlStored is where calicoctl stores a projectcalico.org/v3 object other than a Node on
// a Kubernetes datastore: the crd.projectcalico.org/v1 object of the same kind and name.
func CalicoctlStored(obj *unstructured.Unstructured) *unstructured.Unstructured {
	out := obj.DeepCopy()
	out.SetAPIVersion("crd.projectcalico.org/v1")
	return out
}
