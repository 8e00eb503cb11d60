// Package report prints findings for people and for CI systems: a table, JSON, JUnit XML and
// SARIF, the same for `rrguard validate` and `rrguard audit`.
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/validate"
)

// Formats lists the output formats.
var Formats = []string{"table", "json", "junit", "sarif"}

// Summary counts findings by action.
type Summary struct {
	Deny  int `json:"deny"`
	Warn  int `json:"warn"`
	Audit int `json:"audit"`
	Total int `json:"total"`
}

// Summarize counts findings.
func Summarize(fs []validate.Finding) Summary {
	s := Summary{Total: len(fs)}
	for _, f := range fs {
		switch f.Action {
		case validate.Deny:
			s.Deny++
		case validate.Warn:
			s.Warn++
		case validate.Audit:
			s.Audit++
		}
	}
	return s
}

type jsonFinding struct {
	Rule    string `json:"rule"`
	Action  string `json:"action"`
	Kind    string `json:"kind"`
	Group   string `json:"group,omitempty"`
	Name    string `json:"name"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Location is where in the input the object of a finding was read: a file, as the user named
// it, and the line its document's content starts on.
type Location struct {
	File string
	Line int
}

// Options are what a format may say besides the findings.
type Options struct {
	// Locate returns where the object a finding is about was read (ok false: from no file).
	// SARIF names it as the result's physical location, which GitHub code scanning requires
	// of every result.
	Locate func(validate.ObjectRef) (Location, bool)
}

// Write prints findings in a format.
func Write(w io.Writer, format string, fs []validate.Finding) error {
	return WriteWith(w, format, fs, Options{})
}

// WriteWith prints findings in a format, with what opts adds.
func WriteWith(w io.Writer, format string, fs []validate.Finding, opts Options) error {
	sorted := ByAction(fs)
	switch format {
	case "", "table":
		return writeTable(w, sorted)
	case "json":
		out := struct {
			Findings []jsonFinding `json:"findings"`
			Summary  Summary       `json:"summary"`
		}{Findings: []jsonFinding{}, Summary: Summarize(sorted)}
		for _, f := range sorted {
			out.Findings = append(out.Findings, jsonFinding{f.Rule, string(f.Action), f.Object.Kind, f.Object.Group, f.Object.Name, f.Field, f.Message})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "junit":
		return writeJUnit(w, sorted)
	case "sarif":
		return writeSARIF(w, sorted, opts.Locate)
	}
	return fmt.Errorf("unknown output format %q: use one of %s", format, strings.Join(Formats, ", "))
}

// ByAction returns the findings ordered deny, warn, audit (stable within an action).
func ByAction(fs []validate.Finding) []validate.Finding {
	sorted := append([]validate.Finding(nil), fs...)
	sort.SliceStable(sorted, func(i, j int) bool { return rank(sorted[i].Action) < rank(sorted[j].Action) })
	return sorted
}

func rank(a validate.Action) int {
	switch a {
	case validate.Deny:
		return 0
	case validate.Warn:
		return 1
	}
	return 2
}

func writeTable(w io.Writer, fs []validate.Finding) error {
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "No findings: the route-reflector topology checks out.")
		return err
	}
	for _, f := range fs {
		where := f.Object.String()
		if f.Field != "" {
			where += " " + f.Field
		}
		fmt.Fprintf(w, "%-5s %s  %s\n      %s\n", strings.ToUpper(string(f.Action)), f.Rule, where, f.Message)
	}
	s := Summarize(fs)
	noun := "findings"
	if s.Total == 1 {
		noun = "finding"
	}
	_, err := fmt.Fprintf(w, "\n%d %s: %d deny, %d warn, %d audit\n", s.Total, noun, s.Deny, s.Warn, s.Audit)
	return err
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes one test case per rule: deny findings fail it, others are its output.
func writeJUnit(w io.Writer, fs []validate.Finding) error {
	suite := junitSuite{Name: "rrguard"}
	byRule := map[string][]validate.Finding{}
	for _, f := range fs {
		byRule[f.Rule] = append(byRule[f.Rule], f)
	}
	for _, r := range validate.Rules {
		c := junitCase{Name: r.ID, ClassName: "rrguard"}
		var failures, notes []string
		for _, f := range byRule[r.ID] {
			line := fmt.Sprintf("%s %s: %s", f.Action, f.Object, f.Message)
			if f.Action == validate.Deny {
				failures = append(failures, line)
			} else {
				notes = append(notes, line)
			}
		}
		if len(failures) > 0 {
			c.Failure = &junitFailure{Message: fmt.Sprintf("%d deny findings", len(failures)), Type: "deny", Text: strings.Join(failures, "\n")}
			suite.Failures++
		}
		c.SystemOut = strings.Join(notes, "\n")
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// writeSARIF writes a SARIF 2.1.0 log: one run, the catalogue as the driver's rules, a result
// per finding at the object's logical location (Kind.group/name#field) and, where locate
// knows it, at the file and line the object was read from.
func writeSARIF(w io.Writer, fs []validate.Finding, locate func(validate.ObjectRef) (Location, bool)) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string `json:"id"`
		ShortDescription msg    `json:"shortDescription"`
	}
	type logical struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	}
	type artifact struct {
		URI string `json:"uri"`
	}
	type region struct {
		StartLine int `json:"startLine"`
	}
	type physical struct {
		ArtifactLocation artifact `json:"artifactLocation"`
		Region           region   `json:"region"`
	}
	type location struct {
		PhysicalLocation *physical `json:"physicalLocation,omitempty"`
		LogicalLocations []logical `json:"logicalLocations"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	var rules []rule
	known := map[string]bool{}
	for _, r := range validate.Rules {
		rules = append(rules, rule{ID: r.ID, ShortDescription: msg{r.Summary}})
		known[r.ID] = true
	}
	for _, f := range fs {
		if !known[f.Rule] {
			rules = append(rules, rule{ID: f.Rule, ShortDescription: msg{"Rego policy " + f.Rule}})
			known[f.Rule] = true
		}
	}
	results := []result{}
	for _, f := range fs {
		level := "note"
		switch f.Action {
		case validate.Deny:
			level = "error"
		case validate.Warn:
			level = "warning"
		}
		fq := f.Object.String()
		if f.Field != "" {
			fq += "#" + f.Field
		}
		loc := location{LogicalLocations: []logical{{Name: f.Object.Name, FullyQualifiedName: fq, Kind: "resource"}}}
		if locate != nil {
			if at, ok := locate(f.Object); ok && at.File != "" {
				loc.PhysicalLocation = &physical{ArtifactLocation: artifact{URI: sarifURI(at.File)}, Region: region{StartLine: max(at.Line, 1)}}
			}
		}
		results = append(results, result{RuleID: f.Rule, Level: level, Message: msg{f.Message}, Locations: []location{loc}})
	}
	doc := map[string]interface{}{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []interface{}{map[string]interface{}{
			"tool":    map[string]interface{}{"driver": map[string]interface{}{"name": "rrguard", "informationUri": "https://github.com/rrguard/rrguard", "rules": rules}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// sarifURI writes a file path as a SARIF artifact URI: a relative path stays relative (to the
// directory the tool ran in, the repository's root in CI), with forward slashes and the
// characters a URI reference cannot hold escaped; an absolute path becomes a file URI.
func sarifURI(path string) string {
	slashed := filepath.ToSlash(path)
	u := url.URL{Path: slashed}
	if filepath.IsAbs(path) {
		u.Scheme = "file"
		return u.String()
	}
	return strings.TrimPrefix(u.EscapedPath(), "./")
}
