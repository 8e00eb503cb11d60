package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
)

func newRules() *cobra.Command {
	var policies policyFlags
	var output string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List the built-in rules and policies and their default actions",
		Long: `rules prints the catalogue: every built-in rule (ID, default action, what it catches) and
every Rego policy loaded (shipped ones and those of --policy-dir).

-o table (default), json (for tools), or markdown (the table of docs/rules.md: the README's
and docs/rules.md's tables are generated from the same catalogue).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, ruleFormats); err != nil {
				return err
			}
			set, err := policy.Load(validate.PolicyOptions(policies.dirs, policies.timeout))
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			entries := catalogue(set)
			w := cmd.OutOrStdout()
			switch output {
			case "table":
				return writeRulesTable(w, entries)
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"rules": entries})
			default: // markdown
				_, err := io.WriteString(w, rulesMarkdown(entries, false))
				return err
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or markdown")
	policies.register(cmd.Flags())
	return cmd
}

// ruleFormats are the outputs of `rrguard rules`.
var ruleFormats = []string{"table", "json", "markdown"}

// catalogueEntry is one rule or policy as `rrguard rules` lists it.
type catalogueEntry struct {
	ID      string `json:"id"`
	Default string `json:"default"`
	Summary string `json:"summary"`
	Doc     string `json:"doc,omitempty"`
	Example string `json:"example,omitempty"`
	// Source is builtin, shipped (a policy that ships with rrguard) or the policy's files.
	Source string `json:"source"`
}

func catalogue(set *policy.Set) []catalogueEntry {
	var out []catalogueEntry
	for _, r := range validate.Rules {
		out = append(out, catalogueEntry{ID: r.ID, Default: string(r.Default), Summary: r.Summary, Doc: r.Doc, Example: r.Example, Source: "builtin"})
	}
	if set == nil {
		return out
	}
	for _, p := range set.Policies() {
		def := p.Default
		if def == "" {
			var kinds []string
			for _, k := range []policy.Kind{policy.Deny, policy.Warn} {
				if p.Defines(k) {
					kinds = append(kinds, string(k))
				}
			}
			def = strings.Join(kinds, "/")
		}
		what := p.Title
		if what == "" {
			what = "Rego policy"
		}
		from := strings.Join(p.Files, ", ")
		if p.Shipped {
			from = "shipped"
		}
		out = append(out, catalogueEntry{ID: p.Name, Default: def, Summary: what, Source: from})
	}
	return out
}

func writeRulesTable(w io.Writer, entries []catalogueEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tDEFAULT\tWHAT IT CATCHES")
	for _, e := range entries {
		what := e.Summary
		if e.Source != "builtin" {
			what = fmt.Sprintf("%s (%s)", what, e.Source)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.ID, e.Default, what)
	}
	return tw.Flush()
}

// rulesMarkdown renders the built-in rules as a Markdown table: short, the README's (rule,
// default, one line); otherwise docs/rules.md's (what it protects against, an example
// message). Policies follow in a table of their own.
func rulesMarkdown(entries []catalogueEntry, short bool) string {
	var b strings.Builder
	if short {
		b.WriteString("| rule | default | refuses / reports |\n|---|---|---|\n")
	} else {
		b.WriteString("| rule | default | protects against | example message |\n|---|---|---|---|\n")
	}
	var policies []catalogueEntry
	for _, e := range entries {
		if e.Source != "builtin" {
			policies = append(policies, e)
			continue
		}
		if short {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", e.ID, e.Default, cell(e.Summary))
		} else {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", e.ID, e.Default, cell(e.Doc), codeCell(e.Example))
		}
	}
	if len(policies) > 0 {
		b.WriteString("\n| policy | default | what it catches | from |\n|---|---|---|---|\n")
		for _, p := range policies {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p.ID, p.Default, cell(p.Summary), cell(p.Source))
		}
	}
	return b.String()
}

// cell escapes a table cell's pipes.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// codeCell renders an example message as inline code (its backticks doubled).
func codeCell(s string) string {
	if strings.Contains(s, "`") {
		return "``" + cell(s) + "``"
	}
	return "`" + cell(s) + "`"
}
