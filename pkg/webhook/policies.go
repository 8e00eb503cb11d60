package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rrguard/rrguard/pkg/policy"
	"github.com/rrguard/rrguard/pkg/validate"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// usePolicies loads the Rego policies once and gives them to the server's engine: the shipped
// ones and those of opts.PolicyDirs, which the returned watcher (a runnable for the manager)
// watches and reloads. A policy set that does not load at start is an error (there is no last
// good one to keep); later, it is logged with file and line, counted, and the set in use stays.
func (s *Server) usePolicies(ctx context.Context, opts Options) (*policy.Watcher, error) {
	logger := log.FromContext(ctx).WithName("policy")
	w, err := policy.NewWatcher(validate.PolicyOptions(opts.PolicyDirs, opts.PolicyTimeout), func(r policy.Reload) {
		s.rec.PolicyReload(r.Err == nil, r.Took)
		if r.Err != nil {
			logProblems(logger, r.Err)
			return
		}
		s.rec.PoliciesInUse(len(r.Set.Policies()))
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
		return nil, fmt.Errorf("policies: %w", err)
	}
	set := w.Current()
	if unknown := validate.UnknownRules(opts.Config, set); len(unknown) > 0 {
		return nil, fmt.Errorf("config: rules: unknown rule \"%s\": neither a built-in rule nor a policy of --policy-dir", strings.Join(unknown, `", "`))
	}
	s.rec.PoliciesInUse(len(set.Policies()))
	logger.Info("policies loaded", "policies", names(set), "dirs", opts.PolicyDirs)
	s.Reviewer.Engine = s.Reviewer.Engine.WithPolicies(w)
	return w, nil
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
