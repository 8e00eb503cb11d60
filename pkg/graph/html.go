package graph

import (
	"html/template"
	"io"
	"strings"

	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
)

// Page is what the HTML page shows besides the picture.
type Page struct {
	// Title heads the page ("rrguard audit", "rrguard review: BGPPeer/x").
	Title string
	// Verdict is one line above the picture (say, a review's allowed or denied); may be "".
	Verdict string
	// Findings fill the table; each links to the nodes it names.
	Findings []validate.Finding
}

// maxLinks bounds the node links of one finding.
const maxLinks = 50

type findingRow struct {
	Action, Rule, Object, Field, Message string
	Nodes                                []string
	More                                 int
}

type memberRow struct {
	ID, Name, Box string
}

type boxRow struct {
	ID, Label, Status string
	Class             bool
	Members           []memberRow
}

type changeRow struct{ Change, Text string }

// WriteHTML writes one self-contained page: the picture inline, the findings with links to
// the nodes they name, every node's entry; no request leaves the page (its
// Content-Security-Policy forbids any).
func (g *Graph) WriteHTML(w io.Writer, p Page) error {
	var svg strings.Builder
	g.svg(&svg, func(b *Box) string { return "#members-" + b.ID })
	data := struct {
		Page
		SVG       template.HTML
		Rows      []findingRow
		Counts    report.Summary
		Boxes     []boxRow
		Changes   []changeRow
		Undecided []string
	}{Page: p, SVG: template.HTML(svg.String()), Counts: report.Summarize(p.Findings), Undecided: g.Undecided}
	for _, f := range report.ByAction(p.Findings) {
		row := findingRow{Action: string(f.Action), Rule: f.Rule, Object: f.Object.String(), Field: f.Field, Message: f.Message}
		for _, n := range g.namedNodes(f) {
			if len(row.Nodes) == maxLinks {
				row.More++
				continue
			}
			row.Nodes = append(row.Nodes, n)
		}
		data.Rows = append(data.Rows, row)
	}
	for _, b := range g.Boxes {
		row := boxRow{ID: b.ID, Label: b.Label, Status: b.lines[2], Class: b.class}
		if b.class {
			for _, m := range b.Members {
				row.Members = append(row.Members, memberRow{ID: NodeID(m), Name: m, Box: b.ID})
			}
		}
		data.Boxes = append(data.Boxes, row)
	}
	for _, s := range g.Sessions {
		if s.Change != "" {
			data.Changes = append(data.Changes, changeRow{s.Change, "sessions " + g.byID[s.From].Label + " — " + g.byID[s.To].Label + " (" + strings.Join(s.Sources, ", ") + ")"})
		}
	}
	for _, m := range g.Missing {
		if m.Change != "" {
			data.Changes = append(data.Changes, changeRow{m.Change, "routes of " + g.byID[m.From].Label + " at " + g.byID[m.To].Label + " (" + strings.Join(m.Families, ", ") + ")"})
		}
	}
	return page.Execute(w, data)
}

// namedNodes lists the nodes a finding names: its object when a Node, then the node names in
// its message, once each.
func (g *Graph) namedNodes(f validate.Finding) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] && g.boxOf[name] != nil {
			seen[name] = true
			out = append(out, name)
		}
	}
	if f.Object.Kind == "Node" {
		add(f.Object.Name)
	}
	for _, word := range strings.FieldsFunc(f.Message, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
	}) {
		add(strings.TrimRight(word, "."))
	}
	return out
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:"DejaVu Sans",Verdana,sans-serif;margin:1.2em 2em;color:#1f2328}
h1{font-size:1.4em;margin:.2em 0}
h2{font-size:1.15em;margin:1.4em 0 .5em}
.verdict{font-weight:bold}
.picture{overflow:auto;border:1px solid #d0d7de;border-radius:6px;max-width:100%}
table{border-collapse:collapse;font-size:.9em;width:100%}
th,td{border:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
tr.deny td:first-child{color:#b00000;font-weight:bold}
tr.warn td:first-child{color:#9a6700;font-weight:bold}
td.nodes a{margin-right:.4em;white-space:nowrap}
.added,.restored{color:#1a7f37}.removed,.lost{color:#b00000}
details{margin:.2em 0}
ul.members{columns:12em;font-size:.85em;font-family:"DejaVu Sans Mono",monospace}
li:target{background:#ffe58f}
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Verdict}}<p class="verdict">{{.Verdict}}</p>{{end}}
{{range .Undecided}}<p>Route propagation not decided: {{.}}</p>{{end}}
<div class="picture">
{{.SVG}}
</div>
{{if .Changes}}<h2>What the change does</h2>
<ul id="changes">{{range .Changes}}<li class="{{.Change}}">{{.Change}}: {{.Text}}</li>{{end}}</ul>{{end}}
<h2>Findings: {{.Counts.Deny}} deny, {{.Counts.Warn}} warn, {{.Counts.Audit}} audit</h2>
{{if .Rows}}<table id="findings">
<tr><th>action</th><th>rule</th><th>object</th><th>field</th><th>message</th><th>nodes</th></tr>
{{range .Rows}}<tr class="{{.Action}}"><td>{{.Action}}</td><td>{{.Rule}}</td><td>{{.Object}}</td><td>{{.Field}}</td><td>{{.Message}}</td><td class="nodes">{{range .Nodes}}<a href="#node-{{.}}">{{.}}</a> {{end}}{{if .More}}and {{.More}} more{{end}}</td></tr>
{{end}}</table>{{else}}<p id="findings">No findings: the route-reflector topology checks out.</p>{{end}}
<h2>Nodes</h2>
{{range .Boxes}}{{if .Class}}<details id="members-{{.ID}}"><summary>{{.Label}}{{if .Status}} — {{.Status}}{{end}}</summary>
<ul class="members">{{range .Members}}<li id="{{.ID}}" data-box="{{.Box}}">{{.Name}}</li>{{end}}</ul></details>
{{else}}<div><a href="#{{.ID}}">{{.Label}}</a>{{if .Status}} — {{.Status}}{{end}}</div>
{{end}}{{end}}
<script>
// A link to a node inside a class opens the class's list and marks the class's box.
function show() {
  var id = decodeURIComponent(location.hash.slice(1));
  document.querySelectorAll(".hl").forEach(function (e) { e.classList.remove("hl"); });
  var e = id && document.getElementById(id);
  if (!e) { return; }
  var d = e.closest("details");
  if (d) { d.open = true; }
  var box = e.getAttribute("data-box");
  if (box && document.getElementById(box)) { document.getElementById(box).classList.add("hl"); }
}
window.addEventListener("hashchange", show);
show();
</script>
</body>
</html>
`))
