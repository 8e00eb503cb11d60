package validate

import (
	"fmt"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// ObjectRef names the object a finding is about.
type ObjectRef struct {
	Kind  string `json:"kind"`
	Group string `json:"group,omitempty"`
	Name  string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Group == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "." + r.Group + "/" + r.Name
}

// Finding is one thing wrong.
type Finding struct {
	Rule    string    `json:"rule"`
	Action  Action    `json:"action"`
	Object  ObjectRef `json:"object"`
	Field   string    `json:"field,omitempty"`
	Message string    `json:"message"`
	// key identifies what a finding on an object is about (see finding).
	key string
	// warnAtMost: the finding never refuses a change (a check that could not be done; what a
	// change that leaves every node as well off did not fix).
	warnAtMost bool
	// declared: the finding breaks what rrguard.yaml declares (see check.declared).
	declared bool
}

func refOf(o *calico.Object) ObjectRef {
	return ObjectRef{Kind: o.Kind, Group: o.Group, Name: o.Name}
}

func nodeRef(name string) ObjectRef { return ObjectRef{Kind: calico.KindNode, Name: name} }

func defaultConfigRef(s *model.Snapshot) ObjectRef {
	ref := ObjectRef{Kind: calico.KindBGPConfiguration, Name: calico.DefaultConfigName}
	if d := s.State.Default(); d != nil {
		ref.Group = d.Group
	}
	return ref
}

// members returns the names of the nodes of class c.
func members(s *model.Snapshot, c int) []string {
	m := s.Analysis.Classes[c].Members
	out := make([]string, len(m))
	for i, idx := range m {
		out[i] = s.Topology.Nodes[idx].Name
	}
	return out
}

// nameList renders up to four names and how many more.
func nameList(names []string) string {
	const show = 4
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s (+%d more)", strings.Join(names[:show], ", "), len(names)-show)
}

func hasHave(names []string) string { return verb(names, "has", "have") }

// verb picks the singular or plural form for a list of names.
func verb(names []string, one, many string) string {
	if len(names) == 1 {
		return one
	}
	return many
}

func theyIt(names []string) string { return verb(names, "it", "they") }

func themIt(names []string) string { return verb(names, "it", "them") }
