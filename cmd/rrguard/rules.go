package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
)

func newRules() *cobra.Command {
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List the built-in rules and policies and their default actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RULE\tDEFAULT\tWHAT IT CATCHES")
			for _, r := range validate.Rules {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Default, r.Summary)
			}
			if err := listPolicies(tw, policies); err != nil {
				return err
			}
			return tw.Flush()
		},
	}
	policies.register(cmd.Flags())
	return cmd
}
