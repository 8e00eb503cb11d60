package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func newAudit() *cobra.Command {
	var files []string
	var kubeconfig, kubeContext, configPath, output string
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "audit [--kubeconfig FILE] [--context NAME] | -f PATH...",
		Short: "Report everything wrong in a live cluster (or in exported manifests)",
		Long: `audit reads the live cluster through a kubeconfig (the current context, or --kubeconfig and
--context): every Node and the BGPPeers and BGPConfigurations of the Calico API groups that are
installed, and reports everything wrong with the route-reflector topology — the same audit the
webhook runs periodically. With -f it reads exported manifests instead (clusters that keep
Calico's data in etcd: export with calicoctl get nodes,bgppeers,bgpconfigurations -o yaml).

Exit status: 0 no deny-level finding, 1 deny-level findings, 2 usage, input or connection error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, findingFormats); err != nil {
				return err
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			if len(files) > 0 {
				m, err := readManifests(cmd, files, false)
				if err != nil {
					return err
				}
				return auditFiles(cmd, engine, m, output)
			}
			snap, err := loadSnapshot(cmd, nil, kubeconfig, kubeContext, false)
			if err != nil {
				return err
			}
			return auditAndReport(cmd, engine, snap, output)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "read exported manifests instead of a live cluster (repeatable)")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	cmd.Flags().StringVar(&configPath, "config", "", "rrguard.yaml")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(findingFormats, "|"))
	policies.register(cmd.Flags())
	return cmd
}
