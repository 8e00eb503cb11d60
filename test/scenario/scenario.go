// Package scenario reads the acceptance scenarios of shared/scenarios: a user's story, step by
// step, with the answer rrguard must give. The offline runner and the live runner share it.
package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

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
	Name     string
	Do       string // apply (default) or delete
	Via      string // calicoctl (default) or kubectl: only for projectcalico.org/v3 Node
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
		if step.Via == "" {
			step.Via = "calicoctl"
		}
		if st.Object == nil {
			return nil, fmt.Errorf("scenario %s: step %d (%q): no object", path, i+1, st.Name)
		}
		step.Object = &unstructured.Unstructured{Object: st.Object}
		switch {
		case step.Do != "apply" && step.Do != "delete":
			return nil, fmt.Errorf("scenario %s: step %d (%q): do must be apply or delete, not %q", path, i+1, st.Name, step.Do)
		case step.Via != "calicoctl" && step.Via != "kubectl":
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
