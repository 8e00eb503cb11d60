package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/validate"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	policyReloadsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rrguard_policy_reloads_total",
		Help: "Attempts to load changed policy files, by result: success (the new set is in use) or error (the last good set stays in use).",
	}, []string{"result"})
	policyLoadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_policy_load_ok",
		Help: "1 when the policy files on disk are the set in use, 0 when the last load failed and an older set is still in use.",
	})
	policiesLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_policies_loaded",
		Help: "Rego policies in the set in use (shipped ones included, whether on or off).",
	})
	policyReloadSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_policy_reload_duration_seconds",
		Help: "Time the last policy load took: read, parse and compile.",
	})
)

func init() {
	metrics.Registry.MustRegister(policyReloadsTotal, policyLoadOK, policiesLoaded, policyReloadSeconds)
}

// usePolicies gives the server's engine the Rego policies: the shipped ones and those of
// opts.PolicyDirs, which are watched and reloaded. A policy set that does not load at start is
// an error (there is no last good one to keep); later, it is logged with file and line,
// counted, and the set in use stays.
func (s *Server) usePolicies(ctx context.Context, opts Options) error {
	logger := log.FromContext(ctx).WithName("policy")
	w, err := policy.NewWatcher(validate.PolicyOptions(opts.PolicyDirs, opts.PolicyTimeout), func(r policy.Reload) {
		policyReloadSeconds.Set(r.Took.Seconds())
		if r.Err != nil {
			policyReloadsTotal.WithLabelValues("error").Inc()
			policyLoadOK.Set(0)
			logProblems(logger, r.Err)
			return
		}
		policyReloadsTotal.WithLabelValues("success").Inc()
		policyLoadOK.Set(1)
		policiesLoaded.Set(float64(len(r.Set.Policies())))
		logger.Info("policies reloaded", "policies", names(r.Set), "took", r.Took.String())
		if unknown := validate.UnknownRules(opts.Config, r.Set); len(unknown) > 0 {
			logger.Info("rrguard.yaml sets actions for rules that are neither built in nor loaded policies; they have no effect", "rules", unknown)
		}
		if s.Auditor != nil {
			s.Auditor.Changed() // the audit report follows the policies
		}
		s.kick() // bind the new set before the next request needs it
	})
	if err != nil {
		logProblems(logger, err)
		return fmt.Errorf("policies: %w", err)
	}
	set := w.Current()
	if unknown := validate.UnknownRules(opts.Config, set); len(unknown) > 0 {
		return fmt.Errorf("config: rules: unknown rule %q: neither a built-in rule nor a loaded policy", strings.Join(unknown, `", "`))
	}
	policyLoadOK.Set(1)
	policiesLoaded.Set(float64(len(set.Policies())))
	logger.Info("policies loaded", "policies", names(set), "dirs", opts.PolicyDirs)
	s.Reviewer.Engine = s.Reviewer.Engine.WithPolicies(w)
	if len(opts.PolicyDirs) == 0 {
		return nil
	}
	return s.Manager.Add(w)
}

// logProblems logs each problem of a policy load with its file and line.
func logProblems(logger interface {
	Error(error, string, ...any)
}, err error) {
	var le *policy.LoadError
	if !errors.As(err, &le) {
		logger.Error(err, "policies not loaded; the last good set stays in use")
		return
	}
	for _, p := range le.Problems {
		logger.Error(errors.New(p.Message), "policy not loaded; the last good set stays in use", "file", p.File, "line", p.Line)
	}
}

func names(set *policy.Set) []string {
	out := make([]string, 0, len(set.Policies()))
	for _, p := range set.Policies() {
		out = append(out, p.Name)
	}
	return out
}
