package main

import (
	"bufio"
	"fmt"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
)

func newGraph() *cobra.Command {
	var files, nodes []string
	var kubeconfig, kubeContext, output, reviewFile, configPath string
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "graph (-f PATH... | --kubeconfig FILE --context NAME) [-o svg|dot|html|json] [--node NAME]... [--review REVIEW.json]",
		Short: "Draw the BGP topology: reflectors, clients, sessions, and where routes do not travel",
		Long: `graph draws the topology rrguard models: nodes as boxes (reflectors in the middle row with
their cluster ID and AS), the BGP sessions calico-node builds as lines (mesh, BGPPeer,
reflector to client; one-sided sessions dashed), and what is broken in colour: isolated nodes
and nodes cut off (red), nodes that miss some routes (pink, with dotted red lines to the nodes
whose routes they miss), single points of failure (orange border).

Clusters of more than 40 nodes are drawn by classes of interchangeable nodes ("4,980 clients,
zone a"), reflectors one by one while there are at most 40; --node draws a node on its own.

--review draws a change (an AdmissionReview, as rrguard review takes): the sessions and routes
it removes in red, those it adds in green; the page's findings are the review's.

-o svg (default) is laid out by rrguard itself; -o dot is for Graphviz (dot -Tsvg); -o json
lists boxes, sessions and missing routes; -o html is one self-contained page with the picture,
the findings (linked to the nodes they name) and every node.

Exit status: 0 drawn, 2 usage, input or connection error.`,
		Example: `  rrguard graph -f examples/seed/ > seed.svg
  rrguard graph --context prod -o html > cluster.html
  rrguard graph -f my-calico/ --review delete-peer.json -o html > change.html
  rrguard graph -f my-calico/ -o dot | dot -Tpng > cluster.png`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, graph.Formats); err != nil {
				return err
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			snap, err := loadSnapshot(cmd, files, kubeconfig, kubeContext, false)
			if err != nil {
				return err
			}
			opts := graph.Options{Nodes: nodes}
			page := graph.Page{Title: "rrguard graph"}
			var g *graph.Graph
			if reviewFile != "" {
				review, err := readReview(cmd, reviewFile)
				if err != nil {
					return err
				}
				d, err := (&admission.Reviewer{Engine: engine}).Decide(cmd.Context(), review.Request, snap, admission.MutateThenValidate)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", reviewFile, err)}
				}
				d.Release() // the picture is of a full analysis of the state after
				after := model.NewSnapshot(model.Apply(snap.State, d.Change))
				if g, err = graph.Compare(snap.Analysis, after.Analysis, opts); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				page.Title = fmt.Sprintf("rrguard review: %s %s %s", review.Request.Operation, review.Request.Kind.Kind, review.Request.Name)
				page.Findings = d.Findings
				page.Verdict = "The webhook would allow the change."
				if slices.ContainsFunc(d.Findings, func(f validate.Finding) bool { return f.Action == validate.Deny }) {
					page.Verdict = "The webhook would refuse the change."
				}
			} else {
				if g, err = graph.Build(snap.Analysis, opts); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				if output == "html" {
					page.Findings = engine.Audit(cmd.Context(), snap)
				}
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			switch output {
			case "dot":
				err = g.WriteDOT(w)
			case "json":
				err = g.WriteJSON(w)
			case "html":
				err = g.WriteHTML(w, page)
			default:
				err = g.WriteSVG(w)
			}
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory (repeatable); without it, the live cluster")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "draw this node in a box of its own (repeatable)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVarP(&output, "output", "o", "svg", "output format: "+strings.Join(graph.Formats, "|"))
	cmd.Flags().StringVar(&reviewFile, "review", "", "an AdmissionReview (JSON file, or - for standard input): draw the change it asks for")
	cmd.Flags().StringVar(&configPath, "config", "", "rrguard.yaml")
	policies.register(cmd.Flags())
	return cmd
}
