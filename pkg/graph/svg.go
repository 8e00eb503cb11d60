package graph

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// svgStyle styles the picture; the HTML page embeds the SVG with it.
const svgStyle = `
text{font-family:"DejaVu Sans",Verdana,sans-serif;fill:#1f2328}
.header{font-size:15px;font-weight:bold}
.box rect{fill:#f3f4f6;stroke:#5b6770;stroke-width:1.2}
.box.reflector rect{fill:#dbe7f7;stroke:#2b5797;stroke-width:2}
.box.external rect{fill:#fff6dc;stroke:#9a7b1c}
.box.idle rect{fill:#ffffff;stroke:#8c959f;stroke-dasharray:5 3}
.box.partial rect{fill:#fde3e1;stroke:#c62828}
.box.isolated rect,.box.cutoff rect{fill:#f39a9a;stroke:#b00000;stroke-width:2.5}
.box.single rect{stroke:#e07000;stroke-width:3.5}
.box.added rect{stroke:#1a7f37;stroke-width:3.5}
.box.removed rect{stroke:#b00000;stroke-width:3.5;stroke-dasharray:7 3}
.box:target rect,.box.hl rect{stroke:#000;stroke-width:4.5}
.box .name{font-size:13px;font-weight:bold}
.box .detail{font-size:11px;fill:#444c56}
.box .state{font-size:11px;fill:#8b0000;font-weight:bold}
.s{fill:none;stroke-width:1.6}
.s.mesh{stroke:#9aa0a6}
.s.bgppeer{stroke:#2b5797}
.s.rr-client{stroke:#7b3fa0}
.s.onesided{stroke-dasharray:7 5;stroke:#b36b00}
.s.filtered{stroke-width:3;stroke-dasharray:10 2 2 2}
.dense .sessions .s{stroke-width:1;stroke-opacity:.5}
.s.added,.dense .sessions .s.added{stroke:#1a7f37;stroke-width:4;stroke-opacity:1}
.s.removed,.dense .sessions .s.removed{stroke:#d00000;stroke-width:4;stroke-opacity:1}
.gap{fill:none;stroke:#d00000;stroke-width:1.5;stroke-dasharray:2 4}
.gap.lost{stroke-width:3.5}
.gap.restored{stroke:#1a7f37;stroke-width:3.5}
.legend{font-size:11px}
`

// denseLines is the number of session lines above which they are drawn thin.
const denseLines = 60

// WriteSVG writes the picture as a standalone SVG document.
func (g *Graph) WriteSVG(w io.Writer) error {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	g.svg(&b, nil)
	_, err := io.WriteString(w, b.String())
	return err
}

// esc escapes text for XML and HTML alike.
func esc(s string) string { return html.EscapeString(s) }

// svg writes the <svg> element. memberLink, when set, gives a class box's link target (the
// HTML page's list of its members).
func (g *Graph) svg(b *strings.Builder, memberLink func(*Box) string) {
	// Many lines (reflectors peered with each other, say) are drawn thin, so the boxes and the
	// changes stay readable.
	dense := ""
	if len(g.Sessions) > denseLines {
		dense = ` class="dense"`
	}
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg"%s width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="BGP topology">`+"\n",
		dense, g.width, g.height, g.width, g.height)
	fmt.Fprintf(b, "<style>%s</style>\n", svgStyle)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(b, `<text class="header" x="%.0f" y="%.0f">%s</text>`+"\n", margin, margin+6, esc(g.Summary))
	drawn := 0
	omitted := 0
	// Missing routes: one dotted line per pair of boxes, under the sessions.
	type pair struct{ lo, hi string }
	gaps := map[pair][]*Missing{}
	var order []pair
	for _, m := range g.Missing {
		p := pair{m.From, m.To}
		if p.hi < p.lo {
			p.lo, p.hi = p.hi, p.lo
		}
		if gaps[p] == nil {
			order = append(order, p)
		}
		gaps[p] = append(gaps[p], m)
	}
	for _, p := range order {
		ms := gaps[p]
		x, y := g.byID[p.lo], g.byID[p.hi]
		change := ""
		var why []string
		for _, m := range ms {
			change = max(change, m.Change)
			why = append(why, fmt.Sprintf("the %s pod routes of %s do not reach %s", strings.Join(m.Families, "/"), g.byID[m.From].Label, g.byID[m.To].Label))
		}
		// An isolated box is red already (and a change that isolates it shows the sessions it
		// removes): lines to every other box would only hide the rest.
		if x == y || x.Isolated || y.Isolated || x.Role == RoleIdle || y.Role == RoleIdle {
			continue
		}
		if drawn >= MaxLines {
			omitted++
			continue
		}
		drawn++
		fmt.Fprintf(b, `<path class="gap %s" d="%s"><title>%s</title></path>`+"\n", change, g.curve(x, y, -1), esc(strings.Join(why, "; ")))
	}
	b.WriteString(`<g class="sessions">` + "\n")
	for _, s := range g.Sessions {
		if drawn >= MaxLines {
			omitted++
			continue
		}
		drawn++
		x, y := g.byID[s.From], g.byID[s.To]
		cls := "s " + s.Kind
		if s.OneSided {
			cls += " onesided"
		}
		if len(s.Filters) > 0 {
			cls += " filtered"
		}
		if s.Change != "" {
			cls += " " + s.Change
		}
		title := fmt.Sprintf("%s — %s: %s sessions from %s", x.Label, y.Label, strings.Join(s.Families, "/"), strings.Join(s.Sources, ", "))
		if x == y {
			title = fmt.Sprintf("among the %s: %s sessions from %s", x.Label, strings.Join(s.Families, "/"), strings.Join(s.Sources, ", "))
		}
		if s.OneSided {
			title += "; one-sided: the other end does not configure them back, they stay Idle"
		}
		if len(s.Filters) > 0 {
			title += "; BGPFilters " + strings.Join(s.Filters, ", ")
		}
		if s.Change != "" {
			title += "; " + s.Change + " by the change"
		}
		d := g.curve(x, y, 1)
		if x == y {
			d = loop(x)
		}
		fmt.Fprintf(b, `<path class="%s" d="%s"><title>%s</title></path>`+"\n", cls, d, esc(title))
	}
	b.WriteString("</g>\n")
	for _, box := range g.Boxes {
		g.writeBox(b, box, memberLink)
	}
	g.legend(b, omitted)
	b.WriteString("</svg>\n")
}

// classes are the CSS classes of a box.
func (g *Graph) classes(box *Box) string {
	cls := []string{"box", box.Role}
	switch {
	case box.Isolated:
		cls = append(cls, "isolated")
	case box.Misses > 0 && box.Misses >= g.taking-1:
		cls = append(cls, "cutoff")
	case box.Misses > 0:
		cls = append(cls, "partial")
	}
	if box.SinglePoint {
		cls = append(cls, "single")
	}
	if box.Change != "" {
		cls = append(cls, box.Change)
	}
	return strings.Join(cls, " ")
}

func (g *Graph) writeBox(b *strings.Builder, box *Box, memberLink func(*Box) string) {
	title := box.Label
	if box.class {
		const shown = 20
		list := box.Members[:min(len(box.Members), shown)]
		title += ": " + strings.Join(list, ", ")
		if more := len(box.Members) - len(list); more > 0 {
			title += fmt.Sprintf(" and %s more", thousands(more))
		}
	}
	if st := box.lines[2]; st != "" {
		title += " — " + st
	}
	fmt.Fprintf(b, `<g id="%s" class="%s">`, esc(box.ID), g.classes(box))
	if box.class && memberLink != nil {
		fmt.Fprintf(b, `<a href="%s">`, esc(memberLink(box)))
	}
	fmt.Fprintf(b, `<title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="7"/>`, esc(title), box.x-box.w/2, box.y-boxHeight/2, box.w, boxHeight)
	for i, cls := range []string{"name", "detail", "state"} {
		if box.lines[i] == "" {
			continue
		}
		fmt.Fprintf(b, `<text class="%s" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, cls, box.x, box.y-boxHeight/2+17+float64(i)*15, esc(box.lines[i]))
	}
	if box.class && memberLink != nil {
		b.WriteString("</a>")
	}
	b.WriteString("</g>\n")
}

// curve is the path between two boxes: a straight line between rows; within a row an arc
// (above for the upper rows, below for the lower) so it does not run through the boxes
// between. side -1 bends the other way, or off the straight line, for missing routes.
func (g *Graph) curve(x, y *Box, side float64) string {
	if x.row == y.row {
		bend := -1.0
		if x.band > bandReflectors {
			bend = 1
		}
		bend *= side
		dx := math.Abs(x.x - y.x)
		h := min(boxHeight/2+10+dx*0.1, maxArc)
		return fmt.Sprintf("M%.1f %.1f Q%.1f %.1f %.1f %.1f", x.x, x.y, (x.x+y.x)/2, x.y+bend*2*h, y.x, y.y)
	}
	if side > 0 {
		return fmt.Sprintf("M%.1f %.1f L%.1f %.1f", x.x, x.y, y.x, y.y)
	}
	// A slight bend: a missing route beside the session line it would travel on.
	mx, my := (x.x+y.x)/2, (x.y+y.y)/2
	dx, dy := y.x-x.x, y.y-x.y
	l := math.Hypot(dx, dy)
	return fmt.Sprintf("M%.1f %.1f Q%.1f %.1f %.1f %.1f", x.x, x.y, mx-dy/l*40, my+dx/l*40, y.x, y.y)
}

// loop is the path of the sessions among a class box's members: a loop at its right side.
func loop(box *Box) string {
	r := box.x + box.w/2
	top := box.y - boxHeight/2
	return fmt.Sprintf("M%.1f %.1f C%.1f %.1f %.1f %.1f %.1f %.1f", r-18, top, r-18, top-40, r+40, box.y, r, box.y)
}

func (g *Graph) legend(b *strings.Builder, omitted int) {
	y := g.legendY
	x := margin
	item := func(sample, label string) {
		fmt.Fprintf(b, `%s<text class="legend" x="%.0f" y="%.0f">%s</text>`+"\n", sample, x+38, y+4, esc(label))
		x += 38 + textWidth(label, 11) + 22
		if x > g.width-200 {
			x, y = margin, y+22
		}
	}
	line := func(cls, label string) {
		item(fmt.Sprintf(`<path class="%s" d="M%.0f %.0f h30"/>`, cls, x, y), label)
	}
	rect := func(cls, label string) {
		item(fmt.Sprintf(`<g class="%s"><rect x="%.0f" y="%.0f" width="30" height="14" rx="3"/></g>`, cls, x, y-7), label)
	}
	line("s mesh", "mesh")
	line("s bgppeer", "BGPPeer")
	line("s rr-client", "reflector – client")
	line("s onesided", "one-sided (Idle)")
	line("s bgppeer filtered", "with BGPFilters")
	line("gap", "routes not learned")
	rect("box reflector", "reflector")
	rect("box isolated", "isolated / cut off")
	rect("box partial", "misses routes")
	rect("box single", "single point of failure")
	if g.Review {
		line("s added", "added by the change")
		line("s removed", "removed by the change")
		line("gap lost", "routes the change cuts")
		line("gap restored", "routes the change restores")
	}
	if omitted > 0 {
		fmt.Fprintf(b, `<text class="legend" x="%.0f" y="%.0f">%s lines more are not drawn (see -o json)</text>`+"\n", margin, y+22, thousands(omitted))
	}
}
