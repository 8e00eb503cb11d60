package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/spf13/cobra"
)

// The JSON of rrguard sessions -o json, a contract tools outside the repository read, is
// {"nodes":[nodeSessionsJSON...],"undecided":[undecidedJSON...]}, written node by node
// (writeSessionsJSON). undecided lists the families whose route propagation exceeded
// rrguard's budget: their learns lists are left out.
type undecidedJSON struct {
	Family string `json:"family"`
	Reason string `json:"reason"`
}

type nodeSessionsJSON struct {
	Name      string        `json:"name"`
	AS        uint32        `json:"as"`
	ClusterID string        `json:"clusterID"`
	Sessions  []sessionJSON `json:"sessions"`
	// Routes are the pod routes the node originates (its blocks, and a block of each pool
	// that may give it one); Learns lists, per family, the nodes whose every pod route this
	// node learns.
	Routes []routeJSON         `json:"routes"`
	Learns map[string][]string `json:"learns"`
}

type routeJSON struct {
	Family string `json:"family"`
	CIDR   string `json:"cidr"`
	Pool   string `json:"pool"`
	// Held is false for a block the node may be given but does not hold yet (the pool's first
	// block stands for it).
	Held bool `json:"held"`
	// Assumed: the input has no IPPool; Pool is the one Calico creates by default.
	Assumed bool `json:"assumed,omitempty"`
	// Exported: the node's export function accepts it (BGPFilters aside); ViaBGP: BIRD
	// routes it (IPIP or no encapsulation), unlike VXLAN pools, which felix routes.
	Exported bool `json:"exported"`
	ViaBGP   bool `json:"viaBGP"`
}

type sessionJSON struct {
	Family      string `json:"family"`
	PeerIP      string `json:"peerIP"`
	Port        int    `json:"port"`
	PeerNode    string `json:"peerNode"`
	PeerAS      uint32 `json:"peerAS"`
	LocalAS     uint32 `json:"localAS"`
	RRClient    bool   `json:"rrClient"`
	Source      string `json:"source"`
	Established bool   `json:"established"`
	// Filters are the BGPFilters this end applies; Password names where its password comes
	// from (a Secret and key, never the password), "" for none.
	Filters  []string `json:"filters"`
	Password string   `json:"password"`
}

var sessionFormats = []string{"table", "json", "bird", "bird6"}

func newSessions() *cobra.Command {
	var files, nodes []string
	var kubeconfig, kubeContext, output string
	cmd := &cobra.Command{
		Use:   "sessions (-f PATH... | --kubeconfig FILE --context NAME) [--node NAME]... [-o table|json|bird|bird6]",
		Short: "Show the BGP sessions calico-node configures on each node, and whose routes it learns",
		Long: `sessions shows what calico-node will configure, as rrguard models it: per node its AS and
route-reflector cluster ID, each BGP session (family, peer address, peer node, peer AS, local AS,
rr client, the BGPPeer or mesh it comes from, and whether the other end configures it back so it
can come up), and the nodes whose pod routes it learns once route reflection has run.

-o bird and -o bird6 print the protocol bgp blocks of bird.cfg / bird6.cfg for each node.

Exit status: 0 listed, 2 usage, input or connection error.`,
		Example: `  rrguard sessions -f my-calico/ --node rr-1
  rrguard sessions --context prod -o json
  rrguard sessions -f my-calico/ --node worker-7 -o bird`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, sessionFormats); err != nil {
				return err
			}
			snap, err := loadSnapshot(cmd, files, kubeconfig, kubeContext, output != "table")
			if err != nil {
				return err
			}
			l := newListing(snap)
			names := nodes
			if len(names) == 0 {
				names = slices.Sorted(maps.Keys(l.byName))
			}
			for _, name := range names {
				if l.byName[name] == nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--node %s: no such node in the input", name)}
				}
			}
			a := snap.Analysis
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			switch output {
			case "bird", "bird6":
				f := bgp.IPv4
				if output == "bird6" {
					f = bgp.IPv6
				}
				for _, name := range names {
					if err := a.WriteBIRD(w, name, f); err != nil {
						return err
					}
				}
				return nil
			case "json":
				return l.writeJSON(w, names)
			}
			return l.writeTable(w, names)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory (repeatable); without it, the live cluster")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "only this node (repeatable)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(sessionFormats, "|"))
	return cmd
}

var families = []bgp.Family{bgp.IPv4, bgp.IPv6}

// listing indexes a snapshot's nodes once for the listings.
type listing struct {
	snap   *model.Snapshot
	byName map[string]*bgp.Node
	// byFamily lists, per family, the names of the nodes taking part with an address of it.
	byFamily map[bgp.Family][]string
}

func newListing(snap *model.Snapshot) *listing {
	l := &listing{snap: snap, byName: map[string]*bgp.Node{}, byFamily: map[bgp.Family][]string{}}
	for _, n := range snap.Topology.Nodes {
		l.byName[n.Name] = n
		for _, f := range families {
			if n.Address(f) != "" && snap.Analysis.Class(n.Name) >= 0 {
				l.byFamily[f] = append(l.byFamily[f], n.Name)
			}
		}
	}
	for _, f := range families {
		slices.Sort(l.byFamily[f])
	}
	return l
}

// learns lists, per family the node has an address of and whose propagation was decided,
// the nodes whose routes it learns.
func (l *listing) learns(name string) map[bgp.Family][]string {
	out := map[bgp.Family][]string{}
	for _, f := range families {
		if l.byName[name].Address(f) == "" || !l.snap.Analysis.Decided(f) {
			continue
		}
		list := []string{}
		for _, from := range l.byFamily[f] {
			if from != name && l.snap.Analysis.LearnsIn(f, from, name) {
				list = append(list, from)
			}
		}
		out[f] = list
	}
	return out
}

func (l *listing) writeJSON(w *bufio.Writer, names []string) error {
	// Streamed node by node: the full listing of a large cluster is never held whole.
	fmt.Fprint(w, `{"nodes":[`)
	for i, name := range names {
		n := l.byName[name]
		nj := nodeSessionsJSON{Name: name, AS: l.snap.Topology.NodeAS(n), ClusterID: n.ClusterID, Sessions: []sessionJSON{}, Routes: []routeJSON{}, Learns: map[string][]string{}}
		for _, r := range l.snap.Analysis.NodeRoutes(name) {
			nj.Routes = append(nj.Routes, routeJSON{Family: r.Family.String(), CIDR: r.CIDR.String(), Pool: r.Pool, Held: r.Held, Assumed: r.Assumed, Exported: r.Exported, ViaBGP: r.ViaBGP})
		}
		for f, list := range l.learns(name) {
			nj.Learns[f.String()] = list
		}
		for _, s := range l.snap.Analysis.NodeSessions(name) {
			nj.Sessions = append(nj.Sessions, sessionJSON{Family: s.Family.String(), PeerIP: s.PeerIP, Port: int(s.Port), PeerNode: s.PeerNode, PeerAS: s.PeerAS,
				LocalAS: s.LocalAS, RRClient: s.RRClient, Source: s.Source, Established: s.Established, Filters: append([]string{}, s.Filters...), Password: s.Password})
		}
		b, err := json.Marshal(nj)
		if err != nil {
			return err
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.Write(b)
	}
	w.WriteString("]")
	if len(l.snap.Analysis.Undecided) > 0 {
		var u []undecidedJSON
		for _, x := range l.snap.Analysis.Undecided {
			u = append(u, undecidedJSON{Family: x.Family.String(), Reason: x.Reason})
		}
		b, err := json.Marshal(u)
		if err != nil {
			return err
		}
		w.WriteString(`,"undecided":`)
		w.Write(b)
	}
	_, err := w.WriteString("}\n")
	return err
}

func (l *listing) writeTable(w *bufio.Writer, names []string) error {
	for _, x := range l.snap.Analysis.Undecided {
		fmt.Fprintf(w, "note: %s route propagation not decided: %s\n", x.Family, x.Reason)
	}
	for i, name := range names {
		n := l.byName[name]
		if i > 0 {
			w.WriteByte('\n')
		}
		role := "client"
		if n.IsReflector() {
			role = "reflector, cluster ID " + n.ClusterID
		}
		fmt.Fprintf(w, "%s  AS %d  %s\n", name, l.snap.Topology.NodeAS(n), role)
		if l.snap.Analysis.Class(name) < 0 {
			fmt.Fprintln(w, "  takes part in no BGP session (NotReady, or no BGP address)")
			continue
		}
		sessions := l.snap.Analysis.NodeSessions(name)
		if len(sessions) == 0 {
			fmt.Fprintln(w, "  no BGP session")
		} else {
			fmt.Fprintf(w, "  %-6s %-28s %-20s %-10s %-10s %-9s %-11s %s\n", "FAMILY", "PEER IP", "PEER NODE", "PEER AS", "LOCAL AS", "RR CLIENT", "ESTABLISHED", "SOURCE")
		}
		for _, s := range sessions {
			peer := s.PeerNode
			if peer == "" {
				peer = "(outside the cluster)"
			}
			source := s.Source
			if len(s.Filters) > 0 {
				source += " filters " + strings.Join(s.Filters, ",")
			}
			if s.Password != "" {
				source += " password from " + s.Password
			}
			fmt.Fprintf(w, "  %-6s %-28s %-20s %-10d %-10d %-9s %-11s %s\n", s.Family, s.PeerIP, peer, s.PeerAS, s.LocalAS, yesNo(s.RRClient), yesNo(s.Established), source)
		}
		for _, r := range l.snap.Analysis.NodeRoutes(name) {
			var what []string
			switch {
			case r.Assumed:
				what = append(what, "Calico's default pool, assumed: the input has no IPPool")
			case r.Pool != "":
				what = append(what, "pool "+r.Pool)
			default:
				what = append(what, "in no pool")
			}
			if !r.Held {
				what = append(what, "a block it may be given")
			}
			if !r.Exported {
				what = append(what, "not exported")
			}
			if !r.ViaBGP {
				what = append(what, "VXLAN: felix routes it")
			}
			fmt.Fprintf(w, "  originates %s (%s)\n", r.CIDR, strings.Join(what, ", "))
		}
		learns := l.learns(name)
		for _, f := range families {
			list, ok := learns[f]
			if !ok {
				continue
			}
			if others := len(l.byFamily[f]) - 1; len(list) < others {
				fmt.Fprintf(w, "  %s: learns the pod routes of %d of %d other nodes\n", f, len(list), others)
			} else {
				fmt.Fprintf(w, "  %s: learns the pod routes of every other node (%d)\n", f, len(list))
			}
		}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
