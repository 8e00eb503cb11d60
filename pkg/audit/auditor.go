package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Options configures the periodic audit.
type Options struct {
	// Interval between full audits (default 60s).
	Interval time.Duration
	// Debounce is how long after a change the audit runs, so that a burst of changes costs
	// one run (default 2s).
	Debounce time.Duration
	// ReportAPI is openreports (default) or wgpolicy; ReportName the report's name (rrguard).
	ReportAPI, ReportName string
	// MaxResults caps the results in the report (default 500), far below the 1.5 MB limit.
	MaxResults int
	// MaxEvents caps the Events one run emits (default 20); EventEvery is how often the same
	// finding is announced again (default 1h).
	MaxEvents  int
	EventEvery time.Duration
}

func (o *Options) setDefaults() {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Debounce <= 0 {
		o.Debounce = 2 * time.Second
	}
	if o.ReportName == "" {
		o.ReportName = "rrguard"
	}
	if o.MaxResults <= 0 {
		o.MaxResults = 500
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 20
	}
	if o.EventEvery <= 0 {
		o.EventEvery = time.Hour
	}
}

var (
	violations = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rrguard_audit_violations",
		Help: "Findings of the last audit, by rule and action.",
	}, []string{"rule", "action"})
	reflectors = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rrguard_reflectors",
		Help: "Route reflectors (nodes with a cluster ID): state=total, or state=ready for those Ready with a BGP address.",
	}, []string{"state"})
	nodesWithoutRoutes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_nodes_without_routes",
		Help: "Nodes that do not learn the pod routes of at least one other node.",
	})
	auditSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_audit_duration_seconds",
		Help: "How long the last audit took (analysis, rules and report).",
	})
	lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rrguard_audit_last_success_timestamp_seconds",
		Help: "When the last audit completed and its report was written (Unix time).",
	})
	runsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rrguard_audit_runs_total",
		Help: "Audit runs, by outcome (ok, error).",
	}, []string{"outcome"})
)

func init() {
	metrics.Registry.MustRegister(violations, reflectors, nodesWithoutRoutes, auditSeconds, lastSuccess, runsTotal)
}

// Auditor runs the periodic audit. It is a leader-elected manager runnable: with several
// replicas, only the leader writes the report.
type Auditor struct {
	Engine   *validate.Engine
	Snapshot func() *model.Snapshot
	Client   client.Client
	Recorder events.EventRecorder
	opts     Options

	changed chan struct{}
	runs    atomic.Int64
	mu      sync.Mutex
	told    map[string]time.Time // event key → when it was last emitted
}

// New returns an auditor.
func New(engine *validate.Engine, snapshot func() *model.Snapshot, c client.Client, rec events.EventRecorder, opts Options) (*Auditor, error) {
	opts.setDefaults()
	if _, err := ReportGVK(opts.ReportAPI); err != nil {
		return nil, err
	}
	return &Auditor{Engine: engine, Snapshot: snapshot, Client: c, Recorder: rec, opts: opts,
		changed: make(chan struct{}, 1), told: map[string]time.Time{}}, nil
}

// NeedLeaderElection makes the audit run on the leader only.
func (a *Auditor) NeedLeaderElection() bool { return true }

// Runs returns how many audits this auditor has run.
func (a *Auditor) Runs() int64 { return a.runs.Load() }

// Changed tells the auditor that the cluster changed; it runs after the debounce delay.
func (a *Auditor) Changed() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// Start audits at start, every interval and shortly after changes, until ctx ends.
func (a *Auditor) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("audit")
	tick := time.NewTicker(a.opts.Interval)
	defer tick.Stop()
	var debounce <-chan time.Time
	run := func() {
		if err := a.RunOnce(ctx); err != nil {
			logger.Error(err, "audit failed")
		}
	}
	run()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			run()
		case <-a.changed:
			if debounce == nil {
				debounce = time.After(a.opts.Debounce)
			}
		case <-debounce:
			debounce = nil
			run()
		}
	}
}

// RunOnce audits the current snapshot and publishes the result.
func (a *Auditor) RunOnce(ctx context.Context) error {
	start := time.Now()
	a.runs.Add(1)
	snap := a.Snapshot()
	findings := a.Engine.Audit(ctx, snap)
	a.updateMetrics(snap, findings)
	if err := a.writeReport(ctx, findings, start); err != nil {
		runsTotal.WithLabelValues("error").Inc()
		return err
	}
	a.emitEvents(findings)
	auditSeconds.Set(time.Since(start).Seconds())
	lastSuccess.Set(float64(time.Now().Unix()))
	runsTotal.WithLabelValues("ok").Inc()
	return nil
}

func (a *Auditor) updateMetrics(snap *model.Snapshot, findings []validate.Finding) {
	violations.Reset()
	for _, f := range findings {
		violations.WithLabelValues(f.Rule, string(f.Action)).Inc()
	}
	total, ready := 0, 0
	for _, name := range snap.State.NodeNames() {
		if !snap.State.Node(name).IsReflector() {
			continue
		}
		total++
		if c := snap.Analysis.Class(name); c >= 0 {
			ready++
		}
	}
	reflectors.WithLabelValues("total").Set(float64(total))
	reflectors.WithLabelValues("ready").Set(float64(ready))
	lacking := map[int]bool{}
	for g := range snap.Analysis.Gaps() {
		lacking[g.To] = true
	}
	n := 0
	for c := range lacking {
		n += len(snap.Analysis.Classes[c].Members)
	}
	nodesWithoutRoutes.Set(float64(n))
}

// writeReport creates the report or updates it in place: one write per run.
func (a *Auditor) writeReport(ctx context.Context, findings []validate.Finding, now time.Time) error {
	want, err := BuildReport(a.opts.ReportAPI, a.opts.ReportName, findings, a.opts.MaxResults, now)
	if err != nil {
		return err
	}
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(want.GroupVersionKind())
	err = a.Client.Get(ctx, client.ObjectKey{Name: a.opts.ReportName}, current)
	switch {
	case apierrors.IsNotFound(err):
		if err := a.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("create %s %s: %w", want.GetKind(), want.GetName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	want.SetResourceVersion(current.GetResourceVersion())
	want.SetUID(current.GetUID())
	want.SetCreationTimestamp(current.GetCreationTimestamp())
	if err := a.Client.Update(ctx, want); err != nil {
		return fmt.Errorf("update %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	return nil
}

// emitEvents announces findings on the objects involved: each finding once per EventEvery,
// at most MaxEvents per run.
func (a *Auditor) emitEvents(findings []validate.Finding) {
	if a.Recorder == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	current := map[string]bool{}
	sent := 0
	for _, f := range findings {
		key := f.Object.String() + "|" + f.Rule + "|" + f.Message
		current[key] = true
		if last, ok := a.told[key]; ok && now.Sub(last) < a.opts.EventEvery {
			continue
		}
		if sent >= a.opts.MaxEvents {
			continue
		}
		ref := objectReference(f.Object)
		eventType := corev1.EventTypeWarning
		if f.Action == validate.Audit {
			eventType = corev1.EventTypeNormal
		}
		a.Recorder.Eventf(&ref, nil, eventType, reason(f.Rule), "Audit", "%s", validate.Truncate(f.Message, MaxMessage))
		a.told[key] = now
		sent++
	}
	for key := range a.told {
		if !current[key] {
			delete(a.told, key) // fixed: announce again if it comes back
		}
	}
}
