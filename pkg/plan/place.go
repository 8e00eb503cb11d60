package plan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/selector"
)

// MaxZones bounds the zones a plan spreads reflectors over: a zone label that takes a value
// per node (a host name) is a mistake, not a topology.
const MaxZones = 64

// Zone is one zone of the plan: its nodes, the reflectors it keeps, gains and loses, and the
// cluster IDs they hold.
type Zone struct {
	// Name is the zone label's value ("" for nodes without the label).
	Name string `json:"name"`
	// Nodes counts the zone's nodes that take part in BGP (Ready, with a BGP address).
	Nodes int `json:"nodes"`
	// Eligible counts the nodes that may be reflectors.
	Eligible int `json:"eligible"`
	// Target is how many reflectors the zone should have.
	Target int `json:"target"`
	// Reflectors are the zone's reflectors once the plan is done, with their cluster IDs.
	Reflectors []Reflector `json:"reflectors"`
	// Retired are the reflectors the plan turns back into clients, and why.
	Retired []Retired `json:"retired,omitempty"`
	// Fallback names the other zones whose reflectors this zone's clients also peer with,
	// when the zone has fewer reflectors than --reflectors-per-zone.
	Fallback []string `json:"fallback,omitempty"`
	// Clients counts the zone's nodes that are not reflectors.
	Clients int `json:"clients"`
	// Skipped says why nodes could not be reflectors, by reason, with counts.
	Skipped map[string]int `json:"skipped,omitempty"`
	// Held says why the zone has no safe or eligible choice now: the plan writes nothing for
	// it (its reflectors and BGPPeer stay as they are) and repairs the other zones. Only
	// with the mesh off: leaving the mesh needs every zone.
	Held string `json:"held,omitempty"`
}

// Reflector is a planned reflector.
type Reflector struct {
	Node      string `json:"node"`
	ClusterID string `json:"clusterID"`
	// Kept is true for a node that already was a reflector.
	Kept bool `json:"kept"`
}

// Retired is a reflector the plan retires.
type Retired struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
}

// Display returns the zone's name for people: "(no zone)" for nodes without the label.
func (z *Zone) Display() string {
	if z.Name == "" {
		return "(no zone)"
	}
	return z.Name
}

// UnsettledReason is why a node the controller saw unfit within --settle is not made a reflector.
const UnsettledReason = "unsettled (unfit within --settle)"

// candidate is a node as placement sees it.
type candidate struct {
	name      string
	zone      string
	clusterID string // effective cluster ID ("" for clients)
	live      bool   // Ready and with a BGP address: it takes part in BGP
	why       string // why it cannot be a reflector ("" if it can)
	preferred bool
}

// selectors are the parsed --eligible, --exclude and --prefer.
type selectors struct {
	eligible, exclude, prefer *selector.Selector
}

func parseSelectors(o Options) (selectors, error) {
	var s selectors
	for _, f := range []struct {
		flag, expr string
		dst        **selector.Selector
	}{{"--eligible", o.Eligible, &s.eligible}, {"--exclude", o.Exclude, &s.exclude}, {"--prefer", o.Prefer, &s.prefer}} {
		if f.expr == "" {
			continue
		}
		sel, err := selector.Parse(f.expr)
		if err != nil {
			return s, &UsageError{fmt.Errorf("%s: %w", f.flag, err)}
		}
		*f.dst = &sel
	}
	return s, nil
}

// classify reads every node of the state as placement sees it.
func (p *planner) classify() ([]candidate, error) {
	sels, err := parseSelectors(p.opts)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for _, name := range p.state.NodeNames() {
		n := p.state.Node(name)
		m := n.Model()
		labels := m.Labels
		c := candidate{name: name, zone: labels[p.opts.ZoneLabel], clusterID: m.ClusterID}
		c.live = m.Ready && (m.IPv4 != "" || m.IPv6 != "")
		as := m.AS
		if as == 0 {
			as = p.state.GlobalAS()
		}
		switch {
		case !m.Ready:
			c.why = "NotReady"
		case m.IPv4 == "" && m.IPv6 == "":
			c.why = "no BGP address"
		case p.cordoned[name]:
			c.why = "cordoned"
		case sels.exclude != nil && sels.exclude.Evaluate(labels):
			c.why = "excluded (--exclude)"
		case sels.eligible != nil && !sels.eligible.Evaluate(labels):
			c.why = "not eligible (--eligible)"
		case as != p.as:
			c.why = fmt.Sprintf("in AS %d, not %d", as, p.as)
		}
		if c.live && as != p.as {
			return nil, &Infeasible{Reason: fmt.Sprintf("node %s speaks AS %d but the plan is for AS %d: a reflector reflects only over iBGP, so every node it serves must share its AS; plan per AS with --as, or fix the node's %s",
				name, as, p.as, n.FieldPath("asNumber"))}
		}
		switch {
		case c.why == "" && p.opts.Unsettled[name]:
			c.why = UnsettledReason
		case c.why != "" && c.clusterID != "" && p.opts.InGrace[name]:
			// A reflector lost for less than --grace: a reboot, not a loss; it stays.
			c.why = ""
			p.graceKept++
		}
		c.preferred = sels.prefer != nil && sels.prefer.Evaluate(labels)
		out = append(out, c)
	}
	return out, nil
}

// place picks the reflectors of every zone: existing reflectors that still fit are kept (the
// same input always gives the same choice), preferred nodes come first, then names in order.
// With the mesh off, a zone named in held, or one whose clients have no choice, is held: its
// reflectors stay as they are (the zone is added to held, with why) and the others are placed.
func (p *planner) place(cands []candidate, held map[string]string) ([]*Zone, error) {
	byZone := map[string][]candidate{}
	live := 0
	for _, c := range cands {
		byZone[c.zone] = append(byZone[c.zone], c)
		if c.live {
			live++
		}
	}
	minR := p.engine.Config().MinReflectors
	if live == 0 {
		return nil, &Infeasible{Reason: fmt.Sprintf("none of the %d nodes is Ready with a BGP address: there is no node to place a reflector on, and no client to serve; bring the nodes back (kubectl get nodes) and plan again", len(cands))}
	}
	if live <= minR {
		return nil, &Infeasible{Reason: fmt.Sprintf("only %d node(s) take part in BGP (Ready, with a BGP address): a reflector design needs at least %d reflectors (minReflectors) and a client to serve; at this size keep the node-to-node mesh", live, minR)}
	}
	names := make([]string, 0, len(byZone))
	for z := range byZone {
		names = append(names, z)
	}
	slices.Sort(names)
	if len(names) > MaxZones {
		return nil, &Infeasible{Reason: fmt.Sprintf("--zone-label %s gives %d zones (at most %d are planned): is it a zone label? nodes of one failure domain should share its value", p.opts.ZoneLabel, len(names), MaxZones)}
	}
	var zones []*Zone
	for _, name := range names {
		z := &Zone{Name: name, Skipped: map[string]int{}}
		var fit, keep []candidate
		for _, c := range byZone[name] {
			if c.live {
				z.Nodes++
			}
			if c.why != "" {
				if c.live || c.clusterID != "" {
					z.Skipped[c.why]++
				}
				continue
			}
			z.Eligible++
			fit = append(fit, c)
		}
		if why := held[name]; why != "" {
			z.Target = p.target(z.Nodes)
			zones = append(zones, hold(z, byZone[name], why))
			continue
		}
		if z.Nodes == 0 {
			// Only nodes that take no part in BGP: nothing to serve. Their reflectors retire.
			for _, c := range byZone[name] {
				if c.clusterID != "" {
					z.Retired = append(z.Retired, Retired{Node: c.name, Reason: c.why})
				}
			}
			if len(z.Retired) > 0 {
				zones = append(zones, z)
			}
			continue
		}
		z.Target = p.target(z.Nodes)
		order := func(a, b candidate) int {
			if a.preferred != b.preferred {
				if a.preferred {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.name, b.name)
		}
		for _, c := range fit {
			if c.clusterID != "" {
				keep = append(keep, c)
			}
		}
		slices.SortFunc(keep, order)
		slices.SortFunc(fit, order)
		chosen := map[string]bool{}
		for _, c := range keep {
			if len(chosen) == z.Target {
				break
			}
			chosen[c.name] = true
			z.Reflectors = append(z.Reflectors, Reflector{Node: c.name, ClusterID: c.clusterID, Kept: true})
		}
		for _, c := range fit {
			if len(chosen) == z.Target {
				break
			}
			if !chosen[c.name] {
				chosen[c.name] = true
				z.Reflectors = append(z.Reflectors, Reflector{Node: c.name})
			}
		}
		for _, c := range byZone[name] {
			if c.clusterID == "" || chosen[c.name] {
				continue
			}
			why := c.why
			if why == "" {
				why = fmt.Sprintf("more than the zone's target of %d", z.Target)
			}
			z.Retired = append(z.Retired, Retired{Node: c.name, Reason: why})
		}
		for _, c := range byZone[name] {
			if c.live && !chosen[c.name] {
				z.Clients++
			}
		}
		if len(z.Reflectors) == 0 && z.Clients > 0 {
			if p.state.Mesh() {
				return nil, &Infeasible{Reason: fmt.Sprintf("zone %s has %d node(s) but none can be a reflector (%s): its clients would depend on other zones' reflectors alone; make nodes of the zone eligible (--eligible, --exclude, uncordon, bring them back) and plan again",
					z.Display(), z.Nodes, skippedText(z.Skipped))}
			}
			held[name] = fmt.Sprintf("none of its %d node(s) can be a reflector (%s); make nodes of the zone eligible (--eligible, --exclude, uncordon, bring them back)", z.Nodes, skippedText(z.Skipped))
			zones = append(zones, hold(z, byZone[name], held[name]))
			continue
		}
		zones = append(zones, z)
	}
	total := 0
	for _, z := range zones {
		total += len(z.Reflectors)
	}
	if total < minR {
		return nil, &Infeasible{Reason: fmt.Sprintf("only %d node(s) can be reflectors (%s) while every client needs %d (minReflectors): make more nodes eligible and plan again", total, zonesText(zones), minR)}
	}
	for _, z := range zones {
		if z.Held != "" || len(z.Reflectors) >= p.opts.ReflectorsPerZone || z.Clients == 0 {
			continue
		}
		// Too few reflectors of its own: the zone's clients also peer with the zones that
		// have the most, until they have enough. A held zone's reflectors are no fallback:
		// they may be the lost ones it cannot replace.
		have := len(z.Reflectors)
		others := slices.Clone(zones)
		slices.SortStableFunc(others, func(a, b *Zone) int { return cmp.Compare(len(b.Reflectors), len(a.Reflectors)) })
		for _, o := range others {
			if have >= p.opts.ReflectorsPerZone {
				break
			}
			if o != z && o.Held == "" && len(o.Reflectors) > 0 {
				z.Fallback = append(z.Fallback, o.Name)
				have += len(o.Reflectors)
			}
		}
		if have < minR {
			if p.state.Mesh() {
				return nil, &Infeasible{Reason: fmt.Sprintf("the clients of zone %s would reach only %d reflector(s), %d are needed (minReflectors): make more nodes eligible", z.Display(), have, minR)}
			}
			held[z.Name] = fmt.Sprintf("its clients would reach only %d reflector(s), %d are needed (minReflectors): make more nodes eligible", have, minR)
			hold(z, byZone[z.Name], held[z.Name])
		}
	}
	p.assignClusterIDs(zones)
	return zones, nil
}

// hold keeps a zone as it is: its reflectors, whatever their state, with their cluster IDs;
// nothing retires, and its clients keep their peering.
func hold(z *Zone, cands []candidate, why string) *Zone {
	z.Held = why
	z.Reflectors, z.Retired, z.Fallback, z.Clients = nil, nil, nil, 0
	for _, c := range cands {
		switch {
		case c.clusterID != "":
			z.Reflectors = append(z.Reflectors, Reflector{Node: c.name, ClusterID: c.clusterID, Kept: true})
		case c.live:
			z.Clients++
		}
	}
	return z
}

// target is a zone's reflector count for n nodes: at least --reflectors-per-zone, one more per
// --clients-per-reflector clients, at most --max-per-zone, and never every node.
func (p *planner) target(n int) int {
	t := p.opts.ReflectorsPerZone
	if p.opts.ClientsPerReflector > 0 {
		t = max(t, (n+p.opts.ClientsPerReflector-1)/p.opts.ClientsPerReflector)
	}
	return min(t, p.opts.MaxPerZone)
}

// assignClusterIDs gives each planned reflector its cluster ID: with shared-per-zone one ID per
// zone (the one most of its kept reflectors hold, else a new one), with unique one per
// reflector (a kept reflector keeps its own unless another holds it too).
func (p *planner) assignClusterIDs(zones []*Zone) {
	used := map[string]int{}
	for _, name := range p.state.NodeNames() {
		if id := p.state.Node(name).Model().ClusterID; id != "" {
			used[id]++
		}
	}
	next := netip.MustParseAddr("244.0.0.0")
	fresh := func() string {
		for {
			next = next.Next()
			if b := next.As4(); b[3] == 0 || b[3] == 255 {
				continue
			}
			if s := next.String(); used[s] == 0 {
				used[s] = 1
				return s
			}
		}
	}
	taken := map[string]bool{}
	for _, z := range zones {
		if z.Held == "" {
			continue
		}
		for _, r := range z.Reflectors {
			taken[r.ClusterID] = true
		}
	}
	for _, z := range zones {
		switch {
		case z.Held != "":
			// A held zone keeps what it has.
		case p.opts.ClusterIDs == ClusterIDsUnique:
			for i := range z.Reflectors {
				r := &z.Reflectors[i]
				if r.ClusterID == "" || used[r.ClusterID] > 1 || taken[r.ClusterID] {
					r.ClusterID = fresh()
				}
				taken[r.ClusterID] = true
			}
		default:
			count := map[string]int{}
			for _, r := range z.Reflectors {
				if r.ClusterID != "" && !taken[r.ClusterID] {
					count[r.ClusterID]++
				}
			}
			id := ""
			for cid, n := range count {
				if id == "" || n > count[id] || (n == count[id] && cid < id) {
					id = cid
				}
			}
			if id == "" {
				id = fresh()
			}
			taken[id] = true
			for i := range z.Reflectors {
				z.Reflectors[i].ClusterID = id
			}
		}
	}
}

func skippedText(m map[string]int) string {
	if len(m) == 0 {
		return "no node fits"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func zonesText(zones []*Zone) string {
	parts := make([]string, 0, len(zones))
	for _, z := range zones {
		parts = append(parts, fmt.Sprintf("zone %s: %d", z.Display(), len(z.Reflectors)))
	}
	return strings.Join(parts, "; ")
}

// reflectorSet returns the planned reflectors by node name.
func reflectorSet(zones []*Zone) map[string]Reflector {
	out := map[string]Reflector{}
	for _, z := range zones {
		for _, r := range z.Reflectors {
			out[r.Node] = r
		}
	}
	return out
}
