package main

import (
	"encoding/json"
	"fmt"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/spf13/cobra"
	admissionv1 "k8s.io/api/admission/v1"
)

func newReview() *cobra.Command {
	var state []string
	var input, configPath string
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "review --state PATH [--state PATH...] [-f REVIEW.json|-]",
		Short: "Answer an AdmissionReview offline, exactly as the webhook would",
		Long: `review reads an admission.k8s.io/v1 AdmissionReview (from a file, or - for standard
input), evaluates it against the cluster state in the --state manifests through the same code
as the webhook (mutation, then validation), and prints the AdmissionReview with its response:
allowed, the status with its causes, warnings, and the JSON patch.

Exit status: 0 allowed, 1 denied, 2 usage or input error, 3 internal error (a bug: please report it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			m, err := cluster.LoadFiles(state, cluster.LoadOptions{})
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			review, err := readReview(cmd, input)
			if err != nil {
				return err
			}
			reviewer := &admission.Reviewer{Engine: engine}
			review.Response = reviewer.Review(cmd.Context(), review.Request, model.NewSnapshot(m.State()))
			if review.APIVersion == "" {
				review.APIVersion, review.Kind = "admission.k8s.io/v1", "AdmissionReview"
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(struct {
				APIVersion string                         `json:"apiVersion"`
				Kind       string                         `json:"kind"`
				Response   *admissionv1.AdmissionResponse `json:"response"`
			}{review.APIVersion, review.Kind, review.Response}); err != nil {
				return err
			}
			if !review.Response.Allowed {
				return &exitError{code: exitFindings}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&state, "state", nil, "manifest file or directory with the cluster state (repeatable)")
	cmd.Flags().StringVarP(&input, "file", "f", "-", "the AdmissionReview JSON, or - for standard input")
	cmd.Flags().StringVar(&configPath, "config", "", "rrguard.yaml")
	policies.register(cmd.Flags())
	return cmd
}

// readReview reads an AdmissionReview with a request from a file, or - for standard input.
func readReview(cmd *cobra.Command, input string) (*admissionv1.AdmissionReview, error) {
	var raw []byte
	var err error
	if input == "-" {
		raw, err = cluster.ReadAll("standard input", cmd.InOrStdin())
	} else {
		raw, err = cluster.ReadFile(input)
	}
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &review); err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: not an AdmissionReview: %w", input, err)}
	}
	if review.Request == nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: the AdmissionReview has no request", input)}
	}
	return &review, nil
}
