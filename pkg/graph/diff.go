package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// DiffFormats lists the output formats of rrguard diff.
var DiffFormats = []string{"table", "json"}

// Diff is what a change does to the BGP sessions and to the routes: the picture Compare draws,
// less what stays as it was.
type Diff struct {
	// Before and After are the summaries of the two states (nodes, reflectors, mesh, AS).
	Before string `json:"before"`
	After  string `json:"after"`
	// SessionsAdded and SessionsRemoved are the sessions that exist only after the change, or
	// only before it (between boxes: a node, or a class of interchangeable nodes).
	SessionsAdded   []*Session `json:"sessionsAdded"`
	SessionsRemoved []*Session `json:"sessionsRemoved"`
	// RoutesLost are the routes the change stops: the members of To no longer learn the pod
	// routes of the members of From, in those families. RoutesRegained are those it restores.
	RoutesLost     []*Missing `json:"routesLost"`
	RoutesRegained []*Missing `json:"routesRegained"`
	// Boxes are the boxes the sessions and routes name, with their members.
	Boxes []*Box `json:"boxes"`
	// Undecided lists the families whose routes rrguard could not decide after the change.
	Undecided []string `json:"undecided,omitempty"`

	labels map[string]string
}

// Diff returns what the change a Compare graph draws adds and removes; nil for a graph of one
// state.
func (g *Graph) Diff() *Diff {
	if !g.Review {
		return nil
	}
	d := &Diff{Before: g.SummaryBefore, After: g.Summary, SessionsAdded: []*Session{}, SessionsRemoved: []*Session{},
		RoutesLost: []*Missing{}, RoutesRegained: []*Missing{}, Boxes: []*Box{}, Undecided: g.Undecided, labels: map[string]string{}}
	named := map[string]bool{}
	name := func(ids ...string) {
		for _, id := range ids {
			if !named[id] {
				named[id] = true
				d.labels[id] = g.byID[id].Label
			}
		}
	}
	for _, s := range g.Sessions {
		switch s.Change {
		case Added:
			d.SessionsAdded = append(d.SessionsAdded, s)
		case Removed:
			d.SessionsRemoved = append(d.SessionsRemoved, s)
		default:
			continue
		}
		name(s.From, s.To)
	}
	for _, m := range g.Missing {
		switch m.Change {
		case Lost:
			d.RoutesLost = append(d.RoutesLost, m)
		case Restored:
			d.RoutesRegained = append(d.RoutesRegained, m)
		default:
			continue
		}
		name(m.From, m.To)
	}
	for _, b := range g.Boxes {
		if named[b.ID] {
			d.Boxes = append(d.Boxes, b)
		}
	}
	return d
}

// Empty reports whether the change adds or removes no session and no route.
func (d *Diff) Empty() bool {
	return len(d.SessionsAdded)+len(d.SessionsRemoved)+len(d.RoutesLost)+len(d.RoutesRegained) == 0
}

// WriteJSON writes the diff for other tools: sessions and routes name boxes by ID.
func (d *Diff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// WriteTable writes the diff for people: one line per session added (+) or removed (-), one
// per node (or class of nodes) that loses or regains routes, naming whose, and the counts.
func (d *Diff) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "before: %s\nafter:  %s\n\n", d.Before, d.After)
	if d.Empty() {
		_, err := fmt.Fprintln(w, "The change adds and removes no BGP session and no route.")
		return err
	}
	if len(d.SessionsAdded)+len(d.SessionsRemoved) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSIONS\tBETWEEN\tAND\tFAMILIES\tKIND\tFROM")
		for _, group := range []struct {
			mark string
			ss   []*Session
		}{{"+ added", d.SessionsAdded}, {"- removed", d.SessionsRemoved}} {
			for _, s := range group.ss {
				kind := s.Kind
				if s.OneSided {
					kind += " (one-sided: stays Idle)"
				}
				from, to := d.labels[s.From], d.labels[s.To]
				if s.From == s.To {
					from, to = "among "+from, "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", group.mark, from, to, strings.Join(s.Families, "/"), kind, strings.Join(s.Sources, ", "))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(d.RoutesLost)+len(d.RoutesRegained) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROUTES\tLEARNER\tFAMILIES\tROUTES OF")
		for _, group := range []struct {
			mark string
			ms   []*Missing
		}{{"- lost", d.RoutesLost}, {"+ regained", d.RoutesRegained}} {
			// One line per learner and families: the origins, in order.
			type line struct{ learner, families string }
			var lines []line
			origins := map[line][]string{}
			for _, m := range group.ms {
				l := line{d.labels[m.To], strings.Join(m.Families, "/")}
				of := d.labels[m.From]
				if m.From == m.To {
					l.learner, of = "each of "+l.learner, "one another"
				}
				if _, ok := origins[l]; !ok {
					lines = append(lines, l)
				}
				origins[l] = append(origins[l], of)
			}
			slices.SortStableFunc(lines, func(a, b line) int { return strings.Compare(a.learner, b.learner) })
			for _, l := range lines {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", group.mark, l.learner, l.families, strings.Join(origins[l], ", "))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "sessions: %d added, %d removed; routes: %d lost, %d regained (pairs of learner and origin)\n",
		len(d.SessionsAdded), len(d.SessionsRemoved), len(d.RoutesLost), len(d.RoutesRegained))
	return err
}
