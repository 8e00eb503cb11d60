package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Formats lists the output formats of rrguard graph.
var Formats = []string{"svg", "dot", "html", "json"}

// WriteJSON writes the boxes, sessions and missing routes for other tools.
func (g *Graph) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	out := *g
	if out.Sessions == nil {
		out.Sessions = []*Session{}
	}
	if out.Missing == nil {
		out.Missing = []*Missing{}
	}
	return enc.Encode(&out)
}

// WriteDOT writes the graph in Graphviz's dot language: `dot -Tsvg` lays it out with
// reflectors on one rank.
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	q := strconv.Quote
	b.WriteString("graph rrguard {\n")
	fmt.Fprintf(&b, "  label=%s; labelloc=t; fontname=\"sans-serif\";\n", q(g.Summary))
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fillcolor=\"#f3f4f6\"];\n")
	var reflectors []string
	for _, box := range g.Boxes {
		attrs := []string{"label=" + q(strings.Join(nonEmpty(box.lines), "\n"))}
		switch cls := g.classes(box); {
		case strings.Contains(cls, "isolated"), strings.Contains(cls, "cutoff"):
			attrs = append(attrs, `fillcolor="#f39a9a"`, `color="#b00000"`, "penwidth=2.5")
		case strings.Contains(cls, "partial"):
			attrs = append(attrs, `fillcolor="#fde3e1"`, `color="#c62828"`)
		case box.Role == RoleReflector:
			attrs = append(attrs, `fillcolor="#dbe7f7"`, `color="#2b5797"`, "penwidth=2")
		case box.Role == RoleIdle:
			attrs = append(attrs, `style="rounded,dashed"`)
		}
		if box.SinglePoint {
			attrs = append(attrs, `color="#e07000"`, "penwidth=3.5")
		}
		switch box.Change {
		case Added:
			attrs = append(attrs, `color="#1a7f37"`, "penwidth=3.5")
		case Removed:
			attrs = append(attrs, `color="#b00000"`, "penwidth=3.5")
		}
		if box.Role == RoleReflector {
			reflectors = append(reflectors, q(box.ID))
		}
		fmt.Fprintf(&b, "  %s [%s];\n", q(box.ID), strings.Join(attrs, ", "))
	}
	if len(reflectors) > 0 {
		fmt.Fprintf(&b, "  { rank=same; %s; }\n", strings.Join(reflectors, "; "))
	}
	for _, s := range g.Sessions {
		attrs := []string{"label=" + q(strings.Join(s.Sources, ", ")), "tooltip=" + q(strings.Join(s.Families, "/"))}
		attrs = append(attrs, map[string]string{KindMesh: `color="#9aa0a6"`, KindBGPPeer: `color="#2b5797"`, KindRRClient: `color="#7b3fa0"`}[s.Kind])
		if s.OneSided {
			attrs = append(attrs, "style=dashed", `color="#b36b00"`)
		}
		if len(s.Filters) > 0 {
			attrs[0] = "label=" + q(strings.Join(s.Sources, ", ")+" [filters "+strings.Join(s.Filters, ", ")+"]")
			attrs = append(attrs, "penwidth=2.5")
		}
		switch s.Change {
		case Added:
			attrs = append(attrs, `color="#1a7f37"`, "penwidth=3")
		case Removed:
			attrs = append(attrs, `color="#d00000"`, "penwidth=3")
		}
		fmt.Fprintf(&b, "  %s -- %s [%s];\n", q(s.From), q(s.To), strings.Join(attrs, ", "))
	}
	for _, m := range g.Missing {
		if m.From == m.To {
			continue
		}
		color := `"#d00000"`
		if m.Change == Restored {
			color = `"#1a7f37"`
		}
		fmt.Fprintf(&b, "  %s -- %s [dir=forward, style=dotted, constraint=false, color=%s, tooltip=%s];\n", q(m.From), q(m.To), color,
			q("routes not learned ("+strings.Join(m.Families, "/")+")"))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func nonEmpty(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
