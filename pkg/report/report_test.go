package report

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate"
)

var sarifFindings = []validate.Finding{
	{Rule: validate.RuleRoutePropagation, Action: validate.Deny, Object: validate.ObjectRef{Kind: "BGPConfiguration", Group: "crd.projectcalico.org", Name: "default"},
		Field: "spec.nodeToNodeMeshEnabled", Message: "qtwtv, uqwst, volwl would exchange no IPv4 pod routes with any other node"},
	{Rule: validate.RuleSelectorMatchesNothing, Action: validate.Warn, Object: validate.ObjectRef{Kind: "BGPPeer", Group: "crd.projectcalico.org", Name: "node-peer-to-rr"},
		Field: "spec.peerSelector", Message: "selects no node"},
	{Rule: "private-asn", Action: validate.Audit, Object: validate.ObjectRef{Kind: "Node", Name: "qtwtv"}, Message: "a public AS number"},
}

// sarifLog is the part of SARIF 2.1.0 GitHub code scanning reads (docs.github.com, "SARIF
// support for code scanning"): upload-sarif refuses a log whose results lack a physical
// location with an artifact URI ("locationFromSarifResult: expected artifact location").
type sarifLog struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID  string `json:"ruleId"`
			Level   string `json:"level"`
			Message struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					FullyQualifiedName string `json:"fullyQualifiedName"`
				} `json:"logicalLocations"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

// TestSARIF: the log has what GitHub requires: version 2.1.0 and its schema, one run whose
// driver is rrguard and lists every rule a result names, and per result a rule, a level, a
// message and a physical location (file and line) where the object was read from a file.
func TestSARIF(t *testing.T) {
	files := map[string]Location{
		"BGPConfiguration.crd.projectcalico.org/default": {File: "changes/mesh off.yaml", Line: 3},
		"BGPPeer.crd.projectcalico.org/node-peer-to-rr":  {File: "./changes/peers.yaml", Line: 0},
	}
	var buf bytes.Buffer
	err := WriteWith(&buf, "sarif", sarifFindings, Options{Locate: func(r validate.ObjectRef) (Location, bool) {
		l, ok := files[r.String()]
		return l, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	var log sarifLog
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if log.Version != "2.1.0" || log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || len(log.Runs) != 1 {
		t.Fatalf("version %q, $schema %q, %d runs", log.Version, log.Schema, len(log.Runs))
	}
	run := log.Runs[0]
	if run.Tool.Driver.Name != "rrguard" {
		t.Errorf("driver %q", run.Tool.Driver.Name)
	}
	rules := map[string]bool{}
	for _, r := range run.Tool.Driver.Rules {
		if r.ID == "" || r.ShortDescription.Text == "" {
			t.Errorf("rule %+v without id or description", r)
		}
		rules[r.ID] = true
	}
	if len(rules) != len(validate.Rules)+1 {
		t.Errorf("%d rules, want the catalogue's %d and the policy's", len(rules), len(validate.Rules))
	}
	want := []struct {
		rule, level, uri string
		line             int
		logical          string
	}{
		{validate.RuleRoutePropagation, "error", "changes/mesh%20off.yaml", 3, "BGPConfiguration.crd.projectcalico.org/default#spec.nodeToNodeMeshEnabled"},
		{validate.RuleSelectorMatchesNothing, "warning", "changes/peers.yaml", 1, "BGPPeer.crd.projectcalico.org/node-peer-to-rr#spec.peerSelector"},
		{"private-asn", "note", "", 0, "Node/qtwtv"},
	}
	if len(run.Results) != len(want) {
		t.Fatalf("%d results, want %d:\n%s", len(run.Results), len(want), buf.String())
	}
	for i, w := range want {
		r := run.Results[i]
		if r.RuleID != w.rule || r.Level != w.level || r.Message.Text == "" || !rules[r.RuleID] || len(r.Locations) != 1 {
			t.Errorf("result %d: %+v, want rule %s at level %s, a message, one location, the rule listed", i, r, w.rule, w.level)
			continue
		}
		loc := r.Locations[0]
		if len(loc.LogicalLocations) != 1 || loc.LogicalLocations[0].FullyQualifiedName != w.logical {
			t.Errorf("result %d: logical locations %+v, want %s", i, loc.LogicalLocations, w.logical)
		}
		switch p := loc.PhysicalLocation; {
		case w.uri == "" && p != nil:
			t.Errorf("result %d: a physical location %+v for an object read from no file", i, p)
		case w.uri != "" && (p == nil || p.ArtifactLocation.URI != w.uri || p.Region.StartLine != w.line):
			t.Errorf("result %d: physical location %+v, want %s line %d", i, p, w.uri, w.line)
		}
	}
}

// TestSARIFEmpty: no finding is still a log GitHub takes: results is an empty list, not null.
func TestSARIFEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, "sarif", nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"results": []`)) {
		t.Errorf("no empty results list:\n%s", buf.String())
	}
}
