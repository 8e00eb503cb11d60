package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
)

func newValidate() *cobra.Command {
	var files []string
	var configPath, output string
	var quiet bool
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "validate -f PATH [-f PATH...]",
		Short: "Audit the cluster state described by manifest files",
		Long: `validate reads Calico Nodes (core/v1 Nodes with projectcalico.org annotations, or
projectcalico.org/v3 Node files), BGPPeers and BGPConfigurations of either API group from YAML
or JSON files and directories, and reports everything wrong with the route-reflector topology.

Exit status: 0 no deny-level finding, 1 deny-level findings, 2 usage or input error.`,
		Example: `  rrguard validate -f examples/seed/
  rrguard validate -f nodes.yaml -f peers.yaml --config rrguard.yaml -o json
  rrguard validate -f my-calico/ --policy-dir my-policies/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("no input: give manifest files or directories with -f")}
			}
			if !slices.Contains(report.Formats, output) {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o %q: use one of %s", output, strings.Join(report.Formats, ", "))}
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			m, err := cluster.LoadFiles(files)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if !quiet {
				for _, n := range m.Notes {
					fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
				}
			}
			findings := engine.Audit(validate.NewSnapshot(m.State()))
			if err := report.Write(cmd.OutOrStdout(), output, findings); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if report.Summarize(findings).Deny > 0 {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&configPath, "config", "", "rrguard.yaml with minReflectors, reflectorLabel, clusterIDPolicy and per-rule actions")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(report.Formats, "|"))
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print notes about skipped objects")
	policies.register(cmd.Flags())
	return cmd
}
