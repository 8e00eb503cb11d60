package webhook

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rrguard/rrguard/pkg/validate"
)

// Recorder is what the server reports about itself: each admission answer, the requests it
// could not judge, the cluster objects it cannot read and each policy load. Options.Recorder
// replaces the default, Prometheus metrics on controller-runtime's registry (the /metrics
// endpoint), e.g. in tests.
type Recorder interface {
	// Answered: one admission request answered by webhook (validate, mutate) in took.
	Answered(webhook, kind string, allowed bool, findings []validate.Finding, took time.Duration)
	// NotReady: a request answered 503 because the cluster model was not complete yet.
	NotReady()
	// Panicked: a request on which rrguard panicked, answered HTTP 500.
	Panicked(webhook string)
	// Unreadable: the Calico objects in the cluster rrguard cannot decode.
	Unreadable(n int)
	// PoliciesInUse: a policy set of n policies loaded and in use (at start or on a reload).
	PoliciesInUse(n int)
	// PolicyReload: one attempt to load changed policy files, which failed when ok is false
	// (the last good set stays in use).
	PolicyReload(ok bool, took time.Duration)
	// InFlight: the admission decisions in flight and the bytes large requests hold now.
	InFlight(decisions int, heldBytes int64)
	// Throttled: a request answered 429 by webhook because limit (decisions, memory) was
	// reached (see Limits).
	Throttled(webhook, limit string)
}

// prometheusRecorder is the default Recorder.
type prometheusRecorder struct {
	requests        *prometheus.CounterVec
	findings        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	notReady        prometheus.Counter
	panics          *prometheus.CounterVec
	unreadable      prometheus.Gauge
	policyReloads   *prometheus.CounterVec
	policyLoadOK    prometheus.Gauge
	policiesLoaded  prometheus.Gauge
	policyReloadSec prometheus.Gauge
	inFlight        prometheus.Gauge
	heldBytes       prometheus.Gauge
	throttled       *prometheus.CounterVec
}

// newPrometheusRecorder registers rrguard's admission metrics with reg; servers of one process
// share them (a second registration takes the collectors of the first).
func newPrometheusRecorder(reg prometheus.Registerer) (*prometheusRecorder, error) {
	r := &prometheusRecorder{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rrguard_admission_requests_total",
			Help: "Admission requests answered, by webhook (validate, mutate), kind and whether they were allowed.",
		}, []string{"webhook", "kind", "allowed"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rrguard_admission_findings_total",
			Help: "Findings in admission decisions, by rule and action.",
		}, []string{"rule", "action"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rrguard_admission_duration_seconds",
			Help:    "Time to answer one admission request, decoding to response.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1},
		}, []string{"webhook"}),
		notReady: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rrguard_admission_not_ready_total",
			Help: "Admission requests answered 503 because the cluster model was not complete yet (failurePolicy decides).",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rrguard_admission_panics_total",
			Help: "Admission requests on which rrguard panicked; each was answered HTTP 500 (failurePolicy decides) and logged with its UID.",
		}, []string{"webhook"}),
		unreadable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_objects_unreadable",
			Help: "Calico objects in the cluster rrguard cannot decode (left out of its model; each is logged).",
		}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rrguard_policy_reloads_total",
			Help: "Attempts to load changed policy files, by result: success (the new set is in use) or error (the last good set stays in use).",
		}, []string{"result"}),
		policyLoadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_policy_load_ok",
			Help: "1 when the policy files on disk are the set in use, 0 when the last load failed and an older set is still in use.",
		}),
		policiesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_policies_loaded",
			Help: "Rego policies in the set in use (shipped ones included, whether on or off).",
		}),
		policyReloadSec: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_policy_reload_duration_seconds",
			Help: "Time the last policy load took: read, parse and compile.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_admission_in_flight",
			Help: "Admission decisions in flight (at most the limit on decisions; more wait or are answered 429).",
		}),
		heldBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rrguard_admission_held_bytes",
			Help: "Bytes of the memory limit that large admission requests hold while they are read, decoded and judged (estimated).",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rrguard_admission_throttled_total",
			Help: "Admission requests answered HTTP 429 with Retry-After, by webhook and the limit reached: decisions (in flight) or memory (held by large requests).",
		}, []string{"webhook", "limit"}),
	}
	var err error
	register := func(c prometheus.Collector) prometheus.Collector {
		e := reg.Register(c)
		var already prometheus.AlreadyRegisteredError
		switch {
		case errors.As(e, &already):
			return already.ExistingCollector
		case e != nil && err == nil:
			err = e
		}
		return c
	}
	r.requests = register(r.requests).(*prometheus.CounterVec)
	r.findings = register(r.findings).(*prometheus.CounterVec)
	r.duration = register(r.duration).(*prometheus.HistogramVec)
	r.notReady = register(r.notReady).(prometheus.Counter)
	r.panics = register(r.panics).(*prometheus.CounterVec)
	r.unreadable = register(r.unreadable).(prometheus.Gauge)
	r.policyReloads = register(r.policyReloads).(*prometheus.CounterVec)
	r.policyLoadOK = register(r.policyLoadOK).(prometheus.Gauge)
	r.policiesLoaded = register(r.policiesLoaded).(prometheus.Gauge)
	r.policyReloadSec = register(r.policyReloadSec).(prometheus.Gauge)
	r.inFlight = register(r.inFlight).(prometheus.Gauge)
	r.heldBytes = register(r.heldBytes).(prometheus.Gauge)
	r.throttled = register(r.throttled).(*prometheus.CounterVec)
	return r, err
}

func (r *prometheusRecorder) Answered(webhook, kind string, allowed bool, findings []validate.Finding, took time.Duration) {
	r.duration.WithLabelValues(webhook).Observe(took.Seconds())
	r.requests.WithLabelValues(webhook, kind, strconv.FormatBool(allowed)).Inc()
	for _, f := range findings {
		r.findings.WithLabelValues(f.Rule, string(f.Action)).Inc()
	}
}

func (r *prometheusRecorder) NotReady()               { r.notReady.Inc() }
func (r *prometheusRecorder) Panicked(webhook string) { r.panics.WithLabelValues(webhook).Inc() }
func (r *prometheusRecorder) Unreadable(n int)        { r.unreadable.Set(float64(n)) }

func (r *prometheusRecorder) PoliciesInUse(n int) {
	r.policyLoadOK.Set(1)
	r.policiesLoaded.Set(float64(n))
}

func (r *prometheusRecorder) PolicyReload(ok bool, took time.Duration) {
	r.policyReloadSec.Set(took.Seconds())
	if !ok {
		r.policyReloads.WithLabelValues("error").Inc()
		r.policyLoadOK.Set(0)
		return
	}
	r.policyReloads.WithLabelValues("success").Inc()
}

func (r *prometheusRecorder) InFlight(decisions int, heldBytes int64) {
	r.inFlight.Set(float64(decisions))
	r.heldBytes.Set(float64(heldBytes))
}

func (r *prometheusRecorder) Throttled(webhook, limit string) {
	r.throttled.WithLabelValues(webhook, limit).Inc()
}
