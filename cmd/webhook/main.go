// Command webhook is rrguard's admission server: it validates changes to Calico Nodes,
// BGPPeers and BGPConfigurations against the cluster state and fills in the reflector label.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// version is stamped by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	var opts webhook.Options
	var configPath string
	flag.StringVar(&opts.Host, "host", "", "address the webhook listens on (all by default)")
	flag.IntVar(&opts.Port, "port", 9443, "webhook HTTPS port")
	flag.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key (reloaded when they change)")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "Prometheus metrics address (0 disables)")
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "health and readiness probe address")
	flag.StringVar(&opts.PprofAddr, "pprof-bind-address", "0", "address serving Go's CPU and memory profiles (/debug/pprof/); 0 disables")
	flag.StringVar(&configPath, "config", "", "rrguard.yaml (minReflectors, reflectorLabel, clusterIDPolicy, per-rule actions)")
	var enforcement string
	flag.StringVar(&enforcement, "enforcement", "", "enforce (default: per-rule actions) or audit (allow everything, only record findings); overrides rrguard.yaml")
	flag.DurationVar(&opts.Audit.Interval, "audit-interval", time.Minute, "how often the audit runs (it also runs shortly after each change)")
	flag.StringVar(&opts.Audit.ReportAPI, "report-api", "openreports", "report kind the audit writes: openreports (ClusterReport) or wgpolicy (ClusterPolicyReport)")
	flag.StringVar(&opts.Audit.ReportName, "report-name", "rrguard", "name of the cluster-scoped report")
	flag.IntVar(&opts.Audit.MaxResults, "report-max-results", 500, "results kept in the report (the summary counts all)")
	flag.BoolVar(&opts.AuditDisabled, "disable-audit", false, "do not run the periodic audit")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect one replica to write the audit report (admission is served by all)")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader-election Lease (default: $POD_NAMESPACE)")
	flag.Var((*dirList)(&opts.PolicyDirs), "policy-dir", "directory of Rego policies and params.yaml, e.g. a mounted ConfigMap; reloaded when it changes (repeatable)")
	flag.DurationVar(&opts.PolicyTimeout, "policy-timeout", policy.DefaultTimeout, "longest one policy may take on one request; a policy that takes longer is reported as a policy error")
	flag.BoolVar(&opts.HTTP.EnableHTTP2, "enable-http2", false, "offer HTTP/2 on the webhook port (off by default since the HTTP/2 rapid-reset attacks; the API server uses HTTP/1.1)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	logger := ctrl.Log.WithName("rrguard")

	opts.Config = validate.DefaultConfig()
	if configPath != "" {
		cfg, err := validate.LoadConfig(configPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rrguard webhook: config:", err)
			os.Exit(2)
		}
		opts.Config = cfg
	}
	if enforcement != "" {
		opts.Config.Enforcement = enforcement
		if err := opts.Config.Check(); err != nil {
			fmt.Fprintln(os.Stderr, "rrguard webhook:", err)
			os.Exit(2)
		}
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rrguard webhook: no Kubernetes API to talk to:", err)
		os.Exit(2)
	}
	ctx := ctrl.SetupSignalHandler()
	srv, err := webhook.NewServer(ctx, restConfig, opts)
	var input *webhook.InputError
	if errors.As(err, &input) {
		// Policies that do not load are an input error, like a bad rrguard.yaml.
		fmt.Fprintln(os.Stderr, "rrguard webhook:", err)
		os.Exit(2)
	}
	if err != nil {
		logger.Error(err, "cannot start")
		os.Exit(1)
	}
	logger.Info("starting", "version", version, "port", opts.Port, "certDir", opts.CertDir)
	if err := srv.Start(ctx); err != nil {
		logger.Error(err, "stopped")
		os.Exit(1)
	}
}

// dirList is a repeatable flag.
type dirList []string

func (d *dirList) String() string     { return strings.Join(*d, ",") }
func (d *dirList) Set(v string) error { *d = append(*d, v); return nil }
