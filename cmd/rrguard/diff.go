package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/spf13/cobra"
)

func newDiff() *cobra.Command {
	var files, nodes []string
	var kubeconfig, kubeContext, output string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "diff -f PATH... [--kubeconfig FILE] [--context NAME] [-o table|json] [--node NAME]...",
		Short: "Show the BGP sessions and routes that manifest files would add to and remove from a live cluster",
		Long: `diff lays the objects of manifest files over the live cluster, as validate --context does,
and prints what the change does to BGP: the sessions calico-node would bring up and tear down,
and the pairs of nodes that would stop (or start again) learning each other's pod routes, per
address family. rrguard graph --review draws the same comparison.

Clusters of more than 40 nodes are shown by classes of interchangeable nodes ("1,245 clients,
zone a"); --node shows a node on its own. -o json lists the same with the boxes' members.

Exit status: 0 printed, 2 usage, input or cluster error.`,
		Example: `  rrguard diff --context prod -f changes/
  rrguard diff --context prod -f changes/ -o json | jq '.routesLost | length'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("no input: give the manifest files or directories of the change with -f")}
			}
			if err := checkOutput(output, graph.DiffFormats); err != nil {
				return err
			}
			m, err := readManifests(cmd, files, quiet)
			if err != nil {
				return err
			}
			ov, err := overCluster(cmd, m, kubeconfig, kubeContext, quiet)
			if err != nil {
				return err
			}
			g, err := graph.Compare(model.NewSnapshot(ov.Before).Analysis, model.NewSnapshot(ov.After).Analysis, graph.Options{Nodes: nodes})
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			d := g.Diff()
			w := bufio.NewWriter(cmd.OutOrStdout())
			if output == "json" {
				err = d.WriteJSON(w)
			} else {
				err = d.WriteTable(w)
			}
			if err != nil {
				return err
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory of the change (repeatable)")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "show this node on its own (repeatable)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(graph.DiffFormats, "|"))
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print notes about skipped objects and what the files change")
	return cmd
}
