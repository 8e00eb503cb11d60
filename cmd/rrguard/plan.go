package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/report"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newPlan() *cobra.Command {
	var files []string
	var kubeconfig, kubeContext, configPath, output, outDir, as string
	var apply bool
	var pause time.Duration
	var opts plan.Options
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "plan (-f PATH... | [--kubeconfig FILE] [--context NAME]) [knobs] [-o table|yaml|json | --out DIR | --apply]",
		Short: "Plan a route-reflector design by zone and scale, and the safe way there",
		Long: `plan picks route-reflector nodes per zone (Ready, not cordoned, eligible; existing reflectors
that still fit are kept, so the same input gives the same plan), peers them by selector (one
BGPPeer per zone for its clients and one for the reflectors, whatever the number of nodes),
and orders the migration as steps: while the mesh is on, every node is peered with the
reflectors first, then the reflectors get their cluster IDs and label, then the zones' clients
are peered, reflectors that no longer fit retire, the mesh goes off, and the reflector peering
is narrowed. Each step is judged as the webhook would see it (mutation, then validation)
against the state the steps before it leave, and the state after it is audited: no step is
refused, none loses a route, no client drops below minReflectors.

It reads the live cluster (a kubeconfig) or manifests (-f). Output: a numbered table, -o yaml
(one multi-document stream in step order; core/v1 Nodes carry only the label and annotation the
plan sets, Calico objects are whole, in the group the cluster serves or projectcalico.org/v3
from manifests; removals are kubectl commands in comments), -o json, --out DIR (one file per
step), or
--apply: server-side apply of each step in order with field manager rrguard-plan, never forced,
stopping at the first refusal or conflict. Run it again to resume: the plan is recomputed from
the cluster and steps already done are not repeated.

With the mesh off, a zone with no safe or eligible choice (every node cordoned or excluded,
say) is held: the plan leaves its reflectors and BGPPeer as they are, repairs the other zones,
and exits 1 naming the zone and why.

Exit status: 0 a safe plan (or applied), 1 no safe plan exists (the reason is printed), a zone
is held, or a step was refused, 2 usage, input or connection error.`,
		Example: `  rrguard plan --context prod
  rrguard plan -f exported/ --reflectors-per-zone 3 --exclude "node.kubernetes.io/lifecycle == 'spot'" -o yaml
  rrguard plan --context prod --prefer "has(node-role.kubernetes.io/infra)" --out plan/
  rrguard plan --context prod --apply`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, plan.Formats); err != nil {
				return err
			}
			if apply && len(files) > 0 {
				return &exitError{code: exitUsage, err: errors.New("--apply writes to a live cluster: drop -f (or print the plan with -o yaml and apply it yourself)")}
			}
			if apply && outDir != "" {
				return &exitError{code: exitUsage, err: errors.New("--apply and --out: choose one")}
			}
			if err := parseAS(as, &opts); err != nil {
				return err
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			var c client.Client
			var objs []*calico.Object
			var state *calico.State
			if len(files) > 0 {
				m, err := cluster.LoadFiles(files, cluster.LoadOptions{WholeNodes: true})
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				objs, state = m.Objects, m.State()
			} else {
				c, err = liveClient(kubeconfig, kubeContext)
				if err != nil {
					return err
				}
				// New BGPPeers go to the group the cluster serves, so that kubectl apply of
				// the output works there too.
				if opts.Group, err = plan.ServedGroup(c); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				var notes []string
				objs, notes, err = cluster.LoadLiveObjects(cmd.Context(), c)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("read the cluster: %w", err)}
				}
				for _, n := range notes {
					fmt.Fprintln(cmd.ErrOrStderr(), "note:", n)
				}
				state = calico.NewState(objs)
			}
			p, err := plan.Make(cmd.Context(), engine, state, plan.CoreNodes(objs), opts)
			if err != nil {
				return planError(err)
			}
			switch {
			case outDir != "":
				if err := plan.WriteDir(outDir, p); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d steps written to %s\n", len(p.Steps), outDir)
			case apply:
				if err := applyPlan(cmd, c, engine, p, pause); err != nil {
					return err
				}
			default:
				if err := plan.Write(cmd.OutOrStdout(), output, p); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
			}
			return heldError(p)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "file", "f", nil, "plan from manifests instead of a live cluster (repeatable)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current one)")
	f.StringVar(&configPath, "config", "", "rrguard.yaml (minReflectors, reflectorLabel, clusterIDPolicy, rule actions)")
	f.StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(plan.Formats, "|"))
	f.StringVar(&outDir, "out", "", "write one file per step into this (empty or new) directory")
	f.BoolVar(&apply, "apply", false, "apply the steps to the live cluster in order (server-side apply, field manager "+plan.FieldManager+")")
	f.DurationVar(&pause, "pause", 10*time.Second, "with --apply, the wait between steps: for calico-node to reconfigure BIRD and the new sessions to come up before the next step relies on them")
	registerKnobs(f, &opts, &as)
	policies.register(f)
	return cmd
}

// registerKnobs adds the design's knobs, shared by plan and controller.
func registerKnobs(f *pflag.FlagSet, opts *plan.Options, as *string) {
	f.StringVar(&opts.ZoneLabel, "zone-label", plan.DefaultZoneLabel, "node label whose value is the zone")
	f.IntVar(&opts.ReflectorsPerZone, "reflectors-per-zone", 0, "reflectors per zone, at least minReflectors (default: minReflectors, 2)")
	f.IntVar(&opts.ClientsPerReflector, "clients-per-reflector", 200, "one more reflector per this many nodes of a zone (0: off)")
	f.IntVar(&opts.MaxPerZone, "max-per-zone", 0, "at most this many reflectors per zone (default 5)")
	f.StringVar(&opts.Eligible, "eligible", "", "Calico selector: only nodes it selects may be reflectors")
	f.StringVar(&opts.Exclude, "exclude", "", "Calico selector: nodes it selects are never reflectors (e.g. spot nodes)")
	f.StringVar(&opts.Prefer, "prefer", "", "Calico selector: nodes it selects are chosen first (e.g. infra nodes)")
	f.StringVar(&opts.ClusterIDs, "cluster-ids", plan.ClusterIDsSharedPerZone, "cluster IDs: "+plan.ClusterIDsSharedPerZone+" or "+plan.ClusterIDsUnique)
	f.StringVar(as, "as", "", "AS number of the design (default: the cluster's); every node must speak it")
}

// parseAS reads --as into the options.
func parseAS(as string, opts *plan.Options) error {
	if as == "" {
		return nil
	}
	n, err := calico.ParseASN(as)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--as: %w", err)}
	}
	opts.AS = n
	return nil
}

// restConfig reads a kubeconfig (the in-cluster configuration when there is none).
func restConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("kubeconfig: %w", err)}
	}
	return cfg, nil
}

// liveClient connects to the cluster of a kubeconfig.
func liveClient(kubeconfig, kubeContext string) (client.Client, error) {
	cfg, err := restConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("connect to %s: %w", cfg.Host, err)}
	}
	return c, nil
}

// planError maps the planner's errors to exit codes: no safe plan is 1, bad knobs are 2.
func planError(err error) error {
	var inf *plan.Infeasible
	var use *plan.UsageError
	switch {
	case errors.As(err, &inf):
		return &exitError{code: exitFindings, err: err}
	case errors.As(err, &use):
		return &exitError{code: exitUsage, err: err}
	}
	return &exitError{code: exitUsage, err: err}
}

// stepExit is the exit status of a step the API server did not take: 1 when it judged the
// step and refused it (a 4xx answer: an admission denial, a conflict, RBAC), 2 when the step
// was not judged (a connection error): no answer, an answer of 5xx (the API server could not
// reach an admission webhook that fails closed, or etcd) or 429 (come back later).
func stepExit(err error) int {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if code := status.Status().Code; code >= 400 && code < 500 && code != http.StatusTooManyRequests {
			return exitFindings
		}
	}
	return exitUsage
}

// heldError is exit 1 for a plan that leaves zones as they are, naming them and why.
func heldError(p *plan.Plan) error {
	var parts []string
	for _, z := range p.Held() {
		parts = append(parts, fmt.Sprintf("zone %s: %s", z.Display(), z.Held))
	}
	if len(parts) == 0 {
		return nil
	}
	return &exitError{code: exitFindings, err: fmt.Errorf("no safe plan for %d zone(s), left as they are while the plan repairs the others: %s", len(parts), strings.Join(parts, "; "))}
}

// applyPlan applies the steps in order, stopping at the first one the API server does not take.
func applyPlan(cmd *cobra.Command, c client.Client, engine *validate.Engine, p *plan.Plan, pause time.Duration) error {
	out := cmd.OutOrStdout()
	for _, z := range p.Held() {
		fmt.Fprintf(out, "zone %s is held, its reflectors and BGPPeer left as they are: %s\n", z.Display(), z.Held)
	}
	switch {
	case len(p.Steps) == 0 && len(p.Held()) > 0:
		fmt.Fprintln(out, "nothing to do in the zones that are not held")
		return nil
	case len(p.Steps) == 0:
		fmt.Fprintln(out, "nothing to do: the cluster already has this design")
		return nil
	}
	for _, s := range p.Steps {
		if s.Number > 1 {
			select {
			case <-cmd.Context().Done():
				return &exitError{code: exitFindings, err: fmt.Errorf("interrupted after %d of %d steps; run rrguard plan --apply again to resume", s.Number-1, len(p.Steps))}
			case <-time.After(pause):
			}
		}
		if err := plan.ApplyStep(cmd.Context(), c, s, plan.FieldManager); err != nil {
			fmt.Fprintf(out, "%d of %d steps applied; run rrguard plan --apply again to resume once the cause is fixed\n", s.Number-1, len(p.Steps))
			return &exitError{code: stepExit(err), err: err}
		}
		fmt.Fprintf(out, "step %d/%d applied: %s\n", s.Number, len(p.Steps), s.Summary)
		for _, w := range s.Warnings {
			fmt.Fprintf(out, "  warning: %s\n", w)
		}
	}
	// What the cluster holds now, audited as rrguard audit would.
	objs, _, err := cluster.LoadLiveObjects(cmd.Context(), c)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("read the cluster after the plan: %w", err)}
	}
	findings := engine.Audit(cmd.Context(), model.NewSnapshot(calico.NewState(objs)))
	sum := report.Summarize(findings)
	fmt.Fprintf(out, "all %d steps applied; the cluster's audit: %d deny, %d warn\n", len(p.Steps), sum.Deny, sum.Warn)
	if sum.Deny > 0 {
		if err := report.Write(out, "table", findings); err != nil {
			return err
		}
		return &exitError{code: exitFindings}
	}
	return nil
}
