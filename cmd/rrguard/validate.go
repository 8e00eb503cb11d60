package main

import (
	"bufio"
	"fmt"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
)

// loadManifests reads manifest files into an analysed state, printing notes unless quiet.
func loadManifests(cmd *cobra.Command, files []string, quiet bool) (*model.Snapshot, error) {
	m, err := readManifests(cmd, files, quiet)
	if err != nil {
		return nil, err
	}
	return model.NewSnapshot(m.State()), nil
}

// loadSnapshot reads the state from manifest files or, without files, from the live cluster
// of a kubeconfig.
func loadSnapshot(cmd *cobra.Command, files []string, kubeconfig, kubeContext string, quiet bool) (*model.Snapshot, error) {
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
	return model.NewSnapshot(state), nil
}

// auditAndReport audits a state, prints the findings and sets the exit status: 1 when some
// finding is deny-level.
func auditAndReport(cmd *cobra.Command, engine *validate.Engine, snap *model.Snapshot, output string) error {
	findings := engine.Audit(cmd.Context(), snap)
	if output == "html" {
		if err := writeAuditPage(cmd, snap, findings); err != nil {
			return err
		}
	} else if err := report.Write(cmd.OutOrStdout(), output, findings); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if report.Summarize(findings).Deny > 0 {
		return &exitError{code: exitFindings}
	}
	return nil
}

// findingFormats are the -o formats of validate and audit: the reports' and the HTML page
// of rrguard graph with the findings.
var findingFormats = append(slices.Clone(report.Formats), "html")

// writeAuditPage writes the HTML page: the picture of the whole cluster and the findings.
func writeAuditPage(cmd *cobra.Command, snap *model.Snapshot, findings []validate.Finding) error {
	g, err := graph.Build(snap.Analysis, graph.Options{})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	w := bufio.NewWriter(cmd.OutOrStdout())
	if err := g.WriteHTML(w, graph.Page{Title: "rrguard " + cmd.Name(), Findings: findings}); err != nil {
		return err
	}
	return w.Flush()
}

func newValidate() *cobra.Command {
	var files []string
	var kubeconfig, kubeContext, configPath, output string
	var quiet, live bool
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "validate -f PATH [-f PATH...] [--live | --context NAME | --kubeconfig FILE]",
		Short: "Audit manifest files, or judge them as one change to a live cluster",
		Long: `validate reads Calico Nodes (core/v1 Nodes with projectcalico.org annotations, or
projectcalico.org/v3 Node files), BGPPeers and BGPConfigurations of either API group from YAML
or JSON files and directories, and reports everything wrong with the route-reflector topology.

With --live, --context or --kubeconfig it judges the files against the live cluster instead
(--live: the current context's, or in a pod without a kubeconfig the pod's cluster): their
objects laid over the cluster's (an object replaces the cluster's of the same kind and name; a
projectcalico.org/v3 Node is laid over the core Node, as calicoctl does), judged together as
one change, the way the webhook judges a change: it reports what the change introduces, never
what the cluster already had, and a change that turns the node-to-node mesh off on the whole
resulting topology. kubectl apply --dry-run=server asks the webhook object by object, each
against the cluster without the others; this asks once for all of them.

-o sarif places each result at the file and line its object was read from (results about
objects of the cluster the files do not hold: at the first file), as GitHub code scanning
requires.

Exit status: 0 no deny-level finding, 1 deny-level findings, 2 usage, input or cluster error.`,
		Example: `  rrguard validate -f examples/seed/
  rrguard validate -f nodes.yaml -f peers.yaml --config rrguard.yaml -o json
  rrguard validate -f my-calico/ --policy-dir my-policies/
  rrguard validate --context prod -f changes/ -o sarif > rrguard.sarif`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("no input: give manifest files or directories with -f")}
			}
			if err := checkOutput(output, findingFormats); err != nil {
				return err
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			m, err := readManifests(cmd, files, quiet)
			if err != nil {
				return err
			}
			if live || cmd.Flags().Changed("context") || cmd.Flags().Changed("kubeconfig") {
				return judgeChange(cmd, engine, m, kubeconfig, kubeContext, output, quiet)
			}
			return auditFiles(cmd, engine, m, output)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().BoolVar(&live, "live", false, "judge the files as a change to the live cluster of the current kubeconfig context (in a pod without a kubeconfig: the pod's cluster)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "judge the files as a change to the cluster of this kubeconfig (its current context unless --context)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "judge the files as a change to the cluster of this kubeconfig context")
	cmd.Flags().StringVar(&configPath, "config", "", "rrguard.yaml with minReflectors, reflectorLabel, clusterIDPolicy and per-rule actions")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(findingFormats, "|"))
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print notes about skipped objects")
	policies.register(cmd.Flags())
	return cmd
}
