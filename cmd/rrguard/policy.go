package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// policyFlags are the --policy-dir and --policy-timeout flags of the commands that judge.
type policyFlags struct {
	dirs    []string
	timeout time.Duration
}

func (p *policyFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&p.dirs, "policy-dir", nil, "directory of Rego policies (package rrguard.policies.<name>) and params.yaml to apply too (repeatable)")
	fs.DurationVar(&p.timeout, "policy-timeout", policy.DefaultTimeout, "longest one policy may take on one object; a policy that takes longer is reported as a policy error")
}

// engine loads rrguard.yaml and the policies (the shipped ones and those of --policy-dir).
func (p *policyFlags) engine(configPath string) (*validate.Engine, error) {
	return loadEngineWith(configPath, p.dirs, p.timeout)
}

// loadEngineWith loads rrguard.yaml and the policy set; a policy that does not compile, or a
// rule in rrguard.yaml that names neither a built-in rule nor a loaded policy, is an input
// error (exit 2).
func loadEngineWith(configPath string, dirs []string, timeout time.Duration) (*validate.Engine, error) {
	cfg := validate.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = validate.LoadConfig(configPath); err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("config: %w", err)}
		}
	}
	set, err := policy.Load(validate.PolicyOptions(dirs, timeout))
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if unknown := validate.UnknownRules(cfg, set); len(unknown) > 0 {
		name := configPath
		if name == "" {
			name = "config"
		}
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: rules: unknown rule %q: neither a built-in rule nor a loaded policy (see rrguard rules --policy-dir DIR)",
			name, strings.Join(unknown, `", "`))}
	}
	return validate.New(cfg).WithPolicies(set), nil
}

func newPolicy() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with Rego policies (see docs/policies.md)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyTest())
	return cmd
}

func newPolicyTest() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR...]",
		Short: "Run the Rego unit tests of policy directories, like opa test",
		Long: `test compiles the policies of each directory as the webhook would (the same refused
built-ins, rrguard.lib loaded, params.yaml in data.rrguard.params) and runs the test_ rules of
their *_test.rego files with OPA's tester. Without a directory it tests the policies shipped
with rrguard.

Exit status: 0 every test passed, 1 a test failed (or there are none), 2 a policy does not load.`,
		Example: `  rrguard policy test policies/
  rrguard policy test -v my-policies/`,
		RunE: func(cmd *cobra.Command, dirs []string) error {
			sum, err := policy.RunTests(cmd.Context(), dirs, cmd.OutOrStdout(), verbose)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if sum.Passed+sum.Failed+sum.Errors+sum.Skipped == 0 {
				return &exitError{code: exitFindings, err: fmt.Errorf("no tests found: write test_ rules in *_test.rego files")}
			}
			if !sum.OK() {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every test, with print output")
	return cmd
}
