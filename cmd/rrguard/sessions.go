package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
)

// loadSnapshot reads the state from manifest files or, without files, from the live cluster
// of a kubeconfig.
func loadSnapshot(cmd *cobra.Command, files []string, kubeconfig, kubeContext string, quiet bool) (*validate.Snapshot, error) {
	if len(files) > 0 {
		return loadManifests(cmd, files, quiet)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("kubeconfig: %w", err)}
	}
	state, notes, err := cluster.LoadLive(cmd.Context(), cfg)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("read the cluster at %s: %w", cfg.Host, err)}
	}
	if !quiet {
		for _, n := range notes {
			fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
		}
	}
	return validate.NewSnapshot(state), nil
}

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
	// Learns lists, per family, the nodes whose pod routes this node learns.
	Learns map[string][]string `json:"learns"`
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
			if !slices.Contains(sessionFormats, output) {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: use one of %s", output, strings.Join(sessionFormats, ", "))}
			}
			snap, err := loadSnapshot(cmd, files, kubeconfig, kubeContext, output != "table")
			if err != nil {
				return err
			}
			t, a := snap.Topology, snap.Analysis
			names := nodes
			if len(names) == 0 {
				for _, n := range t.Nodes {
					names = append(names, n.Name)
				}
				slices.Sort(names)
			}
			for _, name := range names {
				if a.Class(name) < 0 && !slices.ContainsFunc(t.Nodes, func(n *bgp.Node) bool { return n.Name == name }) {
					return &exitError{code: exitUsage, err: fmt.Errorf("--node %s: no such node in the input", name)}
				}
			}
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
				return writeSessionsJSON(w, snap, names)
			}
			return writeSessionsTable(w, snap, names)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory (repeatable); without it, the live cluster")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "only this node (repeatable)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(sessionFormats, "|"))
	return cmd
}

func nodeOf(t *bgp.Topology, name string) *bgp.Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// learnsOf lists, per family, the nodes whose routes node name learns.
func learnsOf(snap *validate.Snapshot, name string, names map[bgp.Family][]string) map[string][]string {
	out := map[string][]string{}
	for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
		if n := nodeOf(snap.Topology, name); n == nil || n.Address(f) == "" || !snap.Analysis.Decided(f) {
			continue
		}
		list := []string{}
		for _, from := range names[f] {
			if from != name && snap.Analysis.LearnsIn(f, from, name) {
				list = append(list, from)
			}
		}
		out[f.String()] = list
	}
	return out
}

func familyNames(snap *validate.Snapshot) map[bgp.Family][]string {
	out := map[bgp.Family][]string{}
	for _, n := range snap.Topology.Nodes {
		for _, f := range []bgp.Family{bgp.IPv4, bgp.IPv6} {
			if n.Address(f) != "" && snap.Analysis.Class(n.Name) >= 0 {
				out[f] = append(out[f], n.Name)
			}
		}
	}
	for f := range out {
		slices.Sort(out[f])
	}
	return out
}

func writeSessionsJSON(w *bufio.Writer, snap *validate.Snapshot, names []string) error {
	// Streamed node by node: the full listing of a large cluster is never held whole.
	fmt.Fprint(w, `{"nodes":[`)
	byFamily := familyNames(snap)
	for i, name := range names {
		n := nodeOf(snap.Topology, name)
		nj := nodeSessionsJSON{Name: name, AS: snap.Topology.NodeAS(n), ClusterID: n.ClusterID, Sessions: []sessionJSON{}, Learns: learnsOf(snap, name, byFamily)}
		for _, s := range snap.Analysis.NodeSessions(name) {
			nj.Sessions = append(nj.Sessions, sessionJSON{Family: s.Family.String(), PeerIP: s.PeerIP, Port: int(s.Port), PeerNode: s.PeerNode, PeerAS: s.PeerAS,
				LocalAS: s.LocalAS, RRClient: s.RRClient, Source: s.Source, Established: s.Established})
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
	if len(snap.Analysis.Undecided) > 0 {
		var u []undecidedJSON
		for _, x := range snap.Analysis.Undecided {
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

func writeSessionsTable(w *bufio.Writer, snap *validate.Snapshot, names []string) error {
	byFamily := familyNames(snap)
	for _, x := range snap.Analysis.Undecided {
		fmt.Fprintf(w, "note: %s route propagation not decided: %s\n", x.Family, x.Reason)
	}
	for i, name := range names {
		n := nodeOf(snap.Topology, name)
		if i > 0 {
			w.WriteByte('\n')
		}
		role := "client"
		if n.ClusterID != "" {
			role = "reflector, cluster ID " + n.ClusterID
		}
		fmt.Fprintf(w, "%s  AS %d  %s\n", name, snap.Topology.NodeAS(n), role)
		if snap.Analysis.Class(name) < 0 {
			fmt.Fprintln(w, "  takes part in no BGP session (NotReady, or no BGP address)")
			continue
		}
		sessions := snap.Analysis.NodeSessions(name)
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
			fmt.Fprintf(w, "  %-6s %-28s %-20s %-10d %-10d %-9s %-11s %s\n", s.Family, s.PeerIP, peer, s.PeerAS, s.LocalAS, yesNo(s.RRClient), yesNo(s.Established), s.Source)
		}
		for f, list := range learnsOf(snap, name, byFamily) {
			missing := len(byFamily[familyOf(f)]) - 1 - len(list)
			if missing > 0 {
				fmt.Fprintf(w, "  %s: learns the pod routes of %d of %d other nodes\n", f, len(list), len(byFamily[familyOf(f)])-1)
			} else {
				fmt.Fprintf(w, "  %s: learns the pod routes of every other node (%d)\n", f, len(list))
			}
		}
	}
	return nil
}

func familyOf(s string) bgp.Family {
	if s == bgp.IPv6.String() {
		return bgp.IPv6
	}
	return bgp.IPv4
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
