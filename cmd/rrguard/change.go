package main

import (
	"bufio"
	"fmt"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// readManifests reads manifest files, printing notes unless quiet.
func readManifests(cmd *cobra.Command, files []string, quiet bool) (*cluster.Manifests, error) {
	m, err := cluster.LoadFiles(files, cluster.LoadOptions{})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if !quiet {
		for _, n := range m.Notes {
			fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
		}
	}
	return m, nil
}

// overCluster lays manifests over the live cluster of a kubeconfig's context (see
// cluster.Manifests.Over) and says on standard error, unless quiet, what they change.
func overCluster(cmd *cobra.Command, m *cluster.Manifests, kubeconfig, kubeContext string, quiet bool) (*cluster.Overlay, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("kubeconfig: %w", err)}
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("connect to the cluster at %s: %w", cfg.Host, err)}
	}
	live, notes, err := cluster.LoadLiveObjects(cmd.Context(), c)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("read the cluster at %s: %w", cfg.Host, err)}
	}
	ov := m.Over(live)
	if quiet {
		return ov, nil
	}
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
	}
	created := 0
	for _, ch := range ov.Changes {
		if ch.Old == nil {
			created++
		}
	}
	objects := "objects"
	if created == 1 {
		objects = "object"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "note: against the cluster at %s the files create %d %s, change %d and hold %d as the cluster does\n",
		cfg.Host, created, objects, len(ov.Changes)-created, ov.Unchanged)
	return ov, nil
}

// locator says where the objects of findings were read from the manifests, for SARIF. An
// object read from no file (one of the live cluster's, or the default BGPConfiguration a
// finding names when the files hold none) is placed at the start of the first object's file,
// so that every result has the physical location GitHub code scanning requires.
func locator(m *cluster.Manifests) func(validate.ObjectRef) (report.Location, bool) {
	var first report.Location
	if len(m.Objects) > 0 {
		if s, ok := m.Sources[m.Objects[0].Ref()]; ok {
			first = report.Location{File: s.File, Line: 1}
		}
	}
	return func(ref validate.ObjectRef) (report.Location, bool) {
		// Findings name a Node without its group, and an object in either Calico group is
		// the same object to Calico.
		for _, g := range []string{ref.Group, "", calico.GroupV3, calico.GroupCRD} {
			if s, ok := m.Sources[validate.ObjectRef{Kind: ref.Kind, Group: g, Name: ref.Name}.String()]; ok {
				return report.Location{File: s.File, Line: s.Line}, true
			}
		}
		return first, first.File != ""
	}
}

// auditFiles audits the state manifests describe and prints the findings, SARIF results at the
// files and lines their objects were read from; exit status 1 when some finding is deny-level.
func auditFiles(cmd *cobra.Command, engine *validate.Engine, m *cluster.Manifests, output string) error {
	if output == "html" {
		return auditAndReport(cmd, engine, model.NewSnapshot(m.State()), output)
	}
	findings := engine.Audit(cmd.Context(), model.NewSnapshot(m.State()))
	return writeFindings(cmd, output, findings, report.Options{Locate: locator(m)})
}

// writeFindings prints findings in a report format; exit status 1 when some finding is
// deny-level.
func writeFindings(cmd *cobra.Command, output string, findings []validate.Finding, opts report.Options) error {
	if err := report.WriteWith(cmd.OutOrStdout(), output, findings, opts); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return exitOnDeny(findings)
}

func exitOnDeny(findings []validate.Finding) error {
	if report.Summarize(findings).Deny > 0 {
		return &exitError{code: exitFindings}
	}
	return nil
}

// judgeChange judges the manifests as one change to the live cluster (validate.EvaluateAll)
// and prints what it introduces: findings, or with -o html the picture of the change (what
// graph --review draws) with them.
func judgeChange(cmd *cobra.Command, engine *validate.Engine, m *cluster.Manifests, kubeconfig, kubeContext, output string, quiet bool) error {
	ov, err := overCluster(cmd, m, kubeconfig, kubeContext, quiet)
	if err != nil {
		return err
	}
	before, after := model.NewSnapshot(ov.Before), model.NewSnapshot(ov.After)
	findings := engine.EvaluateAll(cmd.Context(), ov.Changes, before, after)
	if output != "html" {
		return writeFindings(cmd, output, findings, report.Options{Locate: locator(m)})
	}
	g, err := graph.Compare(before.Analysis, after.Analysis, graph.Options{})
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	page := graph.Page{Title: "rrguard validate: the files as one change to the cluster", Findings: findings,
		Verdict: "The change introduces nothing deny-level."}
	if report.Summarize(findings).Deny > 0 {
		page.Verdict = "The change introduces deny-level findings."
	}
	w := bufio.NewWriter(cmd.OutOrStdout())
	if err := g.WriteHTML(w, page); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return exitOnDeny(findings)
}
