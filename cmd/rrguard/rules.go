package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
)

func newRules() *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "List the built-in rules and their default actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RULE\tDEFAULT\tWHAT IT CATCHES")
			for _, r := range validate.Rules {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Default, r.Summary)
			}
			return tw.Flush()
		},
	}
}
