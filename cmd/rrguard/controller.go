package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rrguard/rrguard/pkg/controller"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func newController() *cobra.Command {
	var kubeconfig, kubeContext, configPath, as, metricsAddr, probeAddr string
	var leaderElect bool
	var opts controller.Options
	var policies policyFlags
	cmd := &cobra.Command{
		Use:   "controller [--dry-run] [knobs]",
		Short: "Keep the route-reflector design: replace lost reflectors, one checked step at a time",
		Long: `controller runs in the cluster (config/components/controller) and keeps the design rrguard
plan describes, with the same knobs: when a Node comes, goes, turns NotReady, is cordoned or
relabelled, it plans from its informer cache and applies the first step only (server-side apply,
field manager rrguard-controller, never forced), then waits --cool-down before the next. A
replacement reflector is peered before the lost one is retired. A reflector counts as lost
once unfit for --grace; a node unfit or moved within --settle is not made a reflector, so a
flapping node moves at most one reflector. A zone with no safe or eligible choice is left as it
is (a ZoneHeld Event, the rrguard_controller_zone_held metric) while the others are repaired;
no zone ever gets more than --max-per-zone reflectors. It never leaves the
node-to-node mesh itself (that migration is rrguard plan --apply's): with the mesh on it only
reports. With --leader-elect one replica acts. --dry-run writes nothing and reports the plan as Events and the
rrguard_controller_pending_steps metric. The annotation ` + controller.PauseAnnotation + `=true on its
namespace pauses it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := parseAS(as, &opts.Plan); err != nil {
				return err
			}
			if opts.Namespace == "" {
				return &exitError{code: exitUsage, err: errors.New("--namespace (or $POD_NAMESPACE): the controller's namespace, which carries the pause annotation and the leader-election Lease")}
			}
			if opts.CoolDown <= 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--cool-down %s: give a positive duration", opts.CoolDown)}
			}
			if opts.Grace < 0 || opts.Settle < 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--grace %s, --settle %s: give durations of 0 or more", opts.Grace, opts.Settle)}
			}
			engine, err := policies.engine(configPath)
			if err != nil {
				return err
			}
			log.SetLogger(zap.New(zap.WriteTo(cmd.ErrOrStderr())))
			cfg, err := restConfig(kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			scheme := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(scheme); err != nil {
				return err
			}
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{
				Scheme:                        scheme,
				Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
				HealthProbeBindAddress:        probeAddr,
				LeaderElection:                leaderElect,
				LeaderElectionID:              "rrguard-controller",
				LeaderElectionNamespace:       opts.Namespace,
				LeaderElectionReleaseOnCancel: true,
				// BGPPeers and BGPConfigurations are read as unstructured objects: from the
				// cache too, so that a reconcile reads no object from the API server.
				Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
			})
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("create the manager: %w", err)}
			}
			if opts.Plan.Group, err = plan.ServedGroup(mgr.GetClient()); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			r := &controller.Reconciler{Client: mgr.GetClient(), Engine: engine, Recorder: mgr.GetEventRecorder("rrguard-controller"), Opts: opts}
			if err := r.SetupWithManager(mgr); err != nil {
				return err
			}
			if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
				return err
			}
			if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return mgr.Start(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context")
	f.StringVar(&configPath, "config", "", "rrguard.yaml (minReflectors, reflectorLabel, clusterIDPolicy, rule actions)")
	f.StringVar(&opts.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the controller's namespace: pause annotation, Lease (default: $POD_NAMESPACE)")
	f.DurationVar(&opts.CoolDown, "cool-down", time.Minute, "least time between two writes")
	f.DurationVar(&opts.Resync, "resync", 5*time.Minute, "how often to look again without a Node change")
	f.BoolVar(&opts.DryRun, "dry-run", false, "write nothing: report the plan as Events and metrics")
	f.DurationVar(&opts.Grace, "grace", 2*time.Minute, "how long a reflector must be NotReady, cordoned or otherwise unfit before it is replaced (a reboot is not a loss)")
	f.DurationVar(&opts.Settle, "settle", 10*time.Minute, "how long a node must be fit again after it was unfit or moved zone before it may be a reflector; a lost reflector stays lost that long (flapping nodes move nothing back and forth)")
	f.BoolVar(&leaderElect, "leader-elect", false, "elect one replica to act (Lease rrguard-controller in --namespace)")
	f.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Prometheus metrics address (0 disables)")
	f.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "health and readiness probe address (0 disables)")
	registerKnobs(f, &opts.Plan, &as)
	policies.register(f)
	return cmd
}
