package graph

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The layout is a small layered one written here, in the manner of Sugiyama's method that
// Graphviz's dot uses, cut down to the shape every route-reflector topology has: reflectors
// in a middle row, their clients in a row above and a row below, routers outside the cluster
// and nodes taking part in nothing at the bottom. Clients are ordered by the barycentre of
// the reflectors they peer with (one pass of dot's crossing reduction), so a client sits
// near its reflectors and lines cross little; long rows wrap. It is linear in the boxes
// plus the sessions, deterministic (the same input draws the same picture, so pictures can
// be compared and committed), and needs no external program. The alternatives were worse
// fits: a force-directed layout (gonum's, for one) is quadratic per iteration, places
// reflectors anywhere and moves between runs; no maintained pure-Go library does layered
// layout; Graphviz is an external program, offered as -o dot for those who have it.

const (
	boxHeight = 58.0
	boxGap    = 26.0
	rowGap    = 96.0
	margin    = 30.0
	maxRowW   = 1500.0
	headerH   = 34.0
	// arcRoom is the room above the first row and below the last for the arcs between boxes
	// of one row (see curve: an arc rises at most maxArc above the boxes' centres).
	arcRoom    = 40.0
	maxArc     = 60.0
	legendH    = 78.0
	minCanvasW = 980.0
)

// Bands, top to bottom.
const (
	bandClientsAbove = iota
	bandReflectors
	bandClientsBelow
	bandOther
	bands
)

// lines are the three lines of text in a box: name or class, cluster ID and AS, status.
func (g *Graph) boxLines(box *Box) []string {
	detail := "AS " + strconv.FormatUint(uint64(box.AS), 10)
	switch box.Role {
	case RoleReflector:
		detail = "RR " + box.ClusterID + " · " + detail
	case RoleExternal:
		detail += " · outside the cluster"
	}
	status := box.status(g.taking)
	switch box.Change {
	case Added:
		status = strings.TrimPrefix(status+"; added by the change", "; ")
	case Removed:
		status = strings.TrimPrefix(status+"; removed by the change", "; ")
	}
	return []string{box.Label, detail, status}
}

// textWidth estimates the width of text at size px (DejaVu Sans averages 0.6em a character).
func textWidth(s string, px float64) float64 { return float64(len([]rune(s))) * px * 0.6 }

func (g *Graph) layout() {
	var inBand [bands][]*Box
	var reflectors, clients []*Box
	for _, box := range g.Boxes {
		box.lines = g.boxLines(box)
		box.w = max(90, textWidth(box.lines[0], 13)+20, textWidth(box.lines[1], 11)+20, textWidth(box.lines[2], 11)+20)
		switch box.Role {
		case RoleReflector:
			reflectors = append(reflectors, box)
		case RoleClient, RoleNode:
			clients = append(clients, box)
		default:
			inBand[bandOther] = append(inBand[bandOther], box)
		}
	}
	slices.SortStableFunc(reflectors, func(x, y *Box) int {
		return cmp.Or(cmp.Compare(x.ClusterID, y.ClusterID), cmp.Compare(x.Label, y.Label))
	})
	pos := map[string]int{}
	for i, r := range reflectors {
		pos[r.ID] = i
	}
	// The barycentre of each client: the mean position of the reflectors it peers with.
	sum, count := map[string]float64{}, map[string]int{}
	for _, s := range g.Sessions {
		for _, end := range [][2]string{{s.From, s.To}, {s.To, s.From}} {
			if p, ok := pos[end[1]]; ok {
				sum[end[0]] += float64(p)
				count[end[0]]++
			}
		}
	}
	bary := func(b *Box) float64 {
		if count[b.ID] == 0 {
			return math.Inf(1)
		}
		return sum[b.ID] / float64(count[b.ID])
	}
	slices.SortStableFunc(clients, func(x, y *Box) int { return cmp.Or(cmp.Compare(bary(x), bary(y)), cmp.Compare(x.Label, y.Label)) })
	for i, c := range clients {
		inBand[bandClientsAbove+2*(i%2)] = append(inBand[bandClientsAbove+2*(i%2)], c)
	}
	inBand[bandReflectors] = reflectors

	// Wrap each band into rows and place them.
	type row struct {
		boxes []*Box
		width float64
	}
	var rows []row
	for band, boxes := range inBand {
		var r row
		for _, box := range boxes {
			if len(r.boxes) > 0 && r.width+boxGap+box.w > maxRowW {
				rows = append(rows, r)
				r = row{}
			}
			if len(r.boxes) > 0 {
				r.width += boxGap
			}
			box.band, box.row = band, len(rows)
			r.boxes = append(r.boxes, box)
			r.width += box.w
		}
		if len(r.boxes) > 0 {
			rows = append(rows, r)
		}
	}
	g.width = minCanvasW
	for _, r := range rows {
		g.width = max(g.width, r.width+2*margin)
	}
	y := margin + headerH + arcRoom + boxHeight/2
	for _, r := range rows {
		x := (g.width - r.width) / 2
		for _, box := range r.boxes {
			box.x, box.y = x+box.w/2, y
			x += box.w + boxGap
		}
		y += boxHeight + rowGap
	}
	g.legendY = y - rowGap - boxHeight/2 + arcRoom + margin
	g.height = g.legendY + legendH
	if g.Review {
		g.height += 44 // the legend's review lines
	}
}
