package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Formats are the output formats of a plan.
var Formats = []string{"table", "yaml", "json"}

// Write renders the plan: a numbered table, a multi-document YAML stream in step order, or JSON.
func Write(w io.Writer, format string, p *Plan) error {
	switch format {
	case "table":
		return writeTable(w, p)
	case "yaml":
		return writeYAML(w, p)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return fmt.Errorf("output %q: use one of %s", format, strings.Join(Formats, ", "))
}

func writeTable(w io.Writer, p *Plan) error {
	mesh := "off"
	if p.MeshWasOn {
		mesh = "on"
	}
	fmt.Fprintf(w, "Reflectors by %s (AS %d, cluster IDs %s, label %s; the mesh is %s):\n", p.ZoneLabel, p.AS, p.ClusterIDs, p.ReflectorLabel, mesh)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tNODES\tELIGIBLE\tREFLECTORS\tCLIENTS PEER WITH\tRETIRED")
	for _, z := range p.Zones {
		var rs []string
		for _, r := range z.Reflectors {
			s := r.Node + " " + r.ClusterID
			if r.Kept {
				s += " (kept)"
			}
			rs = append(rs, s)
		}
		peers := "-"
		if z.Clients > 0 {
			peers = strings.Join(append([]string{z.Display()}, z.Fallback...), ", ")
		}
		var ret []string
		for _, r := range z.Retired {
			ret = append(ret, r.Node+" ("+r.Reason+")")
		}
		zone := z.Display()
		if z.Held != "" {
			zone += " (held)"
			peers = "as it is"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", zone, z.Nodes, z.Eligible, orDash(strings.Join(rs, ", ")), peers, orDash(strings.Join(ret, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	held := p.Held()
	for _, z := range held {
		fmt.Fprintf(w, "zone %s is held, its reflectors and BGPPeer left as they are: %s\n", z.Display(), z.Held)
	}
	switch {
	case len(p.Steps) == 0 && len(held) > 0:
		fmt.Fprintln(w, "\nNothing to do in the other zones.")
	case len(p.Steps) == 0:
		fmt.Fprintln(w, "\nNothing to do: the cluster already has this design.")
	default:
		fmt.Fprintf(w, "\n%d steps, each judged by rrguard as the webhook would see it, against the state the steps before it leave:\n", len(p.Steps))
		for _, s := range p.Steps {
			fmt.Fprintf(w, "%3d. [%s] %s\n", s.Number, s.Phase, s.Summary)
			for _, warning := range s.Warnings {
				fmt.Fprintf(w, "     warning: %s\n", warning)
			}
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeYAML(w io.Writer, p *Plan) error {
	for _, s := range p.Steps {
		doc, err := stepYAML(s)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, "---\n"+doc); err != nil {
			return err
		}
	}
	return nil
}

// stepYAML renders a step as a YAML document with its number and summary as comments; a
// removal, which no manifest can say, as the kubectl commands that do it.
func stepYAML(s *Step) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# step %d [%s]: %s\n", s.Number, s.Phase, s.Summary)
	if s.Operation == OpRemove {
		for _, c := range removeCommands(s) {
			fmt.Fprintf(&b, "# run: %s\n", c)
		}
		return b.String(), nil
	}
	raw, err := yaml.Marshal(s.Object)
	if err != nil {
		return "", fmt.Errorf("step %d: %w", s.Number, err)
	}
	b.Write(raw)
	return b.String(), nil
}

func removeCommands(s *Step) []string {
	var out []string
	for _, l := range s.RemoveLabels {
		out = append(out, fmt.Sprintf("kubectl label node %s %s-", s.Name, l))
	}
	for _, a := range s.RemoveAnnotations {
		out = append(out, fmt.Sprintf("kubectl annotate node %s %s-", s.Name, a))
	}
	for _, a := range slices.Sorted(maps.Keys(s.SetAnnotations)) {
		out = append(out, fmt.Sprintf("kubectl annotate --overwrite node %s %s='%s'", s.Name, a, s.SetAnnotations[a]))
	}
	return out
}

// WriteDir writes one file per step into dir (created if missing): NN-<phase>-<name>.yaml, or
// NN-<phase>-<name>.sh for a removal. It refuses a directory that holds files already, so that
// steps of an older plan never mix with this one's.
func WriteDir(dir string, p *Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("--out %s: the directory is not empty; give an empty or new directory so that no step of an older plan is applied with this one", dir)
	}
	width := len(fmt.Sprint(len(p.Steps)))
	for _, s := range p.Steps {
		base := fmt.Sprintf("%0*d-%s-%s-%s", width, s.Number, s.Phase, strings.ToLower(s.Kind), s.Name)
		if s.Operation == OpRemove {
			body := fmt.Sprintf("#!/bin/sh\n# step %d [%s]: %s\nset -e\n%s\n", s.Number, s.Phase, s.Summary, strings.Join(removeCommands(s), "\n"))
			if err := os.WriteFile(filepath.Join(dir, base+".sh"), []byte(body), 0o755); err != nil {
				return err
			}
			continue
		}
		doc, err := stepYAML(s)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, base+".yaml"), []byte(doc), 0o644); err != nil {
			return err
		}
	}
	return nil
}
