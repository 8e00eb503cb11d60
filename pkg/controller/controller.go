// Package controller keeps a route-reflector design in a live cluster: on Node changes it
// plans the way to the target (pkg/plan) from the informer cache and executes the first step
// only, then waits a cool-down before it looks again. One change at a time, each judged by the
// webhook's code before it is written; server-side apply conflicts with a user's edits are
// reported, never forced; a pause annotation and --dry-run stop it from writing. It remembers
// what it saw of each node, so that a reboot moves nothing (--grace) and a flapping node is
// not trusted again at once (--settle); a zone with no safe or eligible choice is reported
// and left as it is while the others are repaired.
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/plan"
	"github.com/rrguard/rrguard/pkg/validate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// PauseAnnotation on the controller's namespace, set to "true", stops every write.
const PauseAnnotation = "rrguard.io/controller-paused"

// FieldManager is the server-side apply field manager of the controller's writes.
const FieldManager = "rrguard-controller"

// Options configure the controller.
type Options struct {
	// Plan holds the knobs of the design (the same as rrguard plan's).
	Plan plan.Options
	// Namespace is the controller's own: it carries the pause annotation, and the Events
	// about steps that concern no Node.
	Namespace string
	// CoolDown is the least time between two writes (default 1 minute).
	CoolDown time.Duration
	// Resync is how often the controller looks again without a Node change (default 5 minutes).
	Resync time.Duration
	// DryRun reports the plan as Events and metrics and writes nothing.
	DryRun bool
	// Grace is how long a reflector must have been NotReady, cordoned or otherwise unfit
	// before the controller replaces it: a kubelet restart or a node's reboot in a rolling
	// upgrade is not a loss.
	Grace time.Duration
	// Settle is how long a node must have been fit again, after it was unfit or moved zone,
	// before it may be made a reflector; a reflector that was lost stays lost that long.
	// Flapping nodes (cordon, readiness, labels) so move at most one reflector each.
	Settle time.Duration
}

var (
	pendingSteps = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rrguard_controller_pending_steps",
		Help: "Steps between the cluster and the route-reflector design, as last planned (-1: no safe plan)."})
	appliedSteps = prometheus.NewCounter(prometheus.CounterOpts{Name: "rrguard_controller_steps_applied_total",
		Help: "Steps the controller applied."})
	failedSteps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rrguard_controller_step_failures_total",
		Help: "Steps the API server did not take, by reason: conflict (a user's edit), refused (admission), forbidden (RBAC), error."}, []string{"reason"})
	paused = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rrguard_controller_paused",
		Help: "1 while the pause annotation is set on the controller's namespace."})
	zoneHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rrguard_controller_zone_held",
		Help: "1 for each zone left as it is (no safe or eligible choice there; the ZoneHeld Event says why) while the others are repaired."}, []string{"zone"})
)

func init() {
	metrics.Registry.MustRegister(pendingSteps, appliedSteps, failedSteps, paused, zoneHeld)
}

// Reconciler plans and takes one step at a time.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client   client.Client
	Engine   *validate.Engine
	Recorder events.EventRecorder
	Opts     Options

	mu         sync.Mutex
	lastWrite  time.Time
	lastReport string // the last Events sent for a plan that was not acted on, not repeated
	now        func() time.Time
	seen       *memory
	held       map[string]string // the zones last reported held, and why
}

// key is the one work item: every Node change asks the same question of the whole cluster.
var key = reconcile.Request{NamespacedName: types.NamespacedName{Name: "route-reflectors"}}

// SetupWithManager watches Nodes: creations, deletions, and changes of readiness,
// schedulability, labels or Calico annotations (not heartbeats).
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Opts.CoolDown == 0 {
		r.Opts.CoolDown = time.Minute
	}
	if r.Opts.Resync == 0 {
		r.Opts.Resync = 5 * time.Minute
	}
	r.init()
	toKey := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{key} })
	return builder.ControllerManagedBy(mgr).Named("rrguard-controller").
		Watches(&corev1.Node{}, toKey, builder.WithPredicates(predicate.Funcs{
			UpdateFunc:  func(e event.UpdateEvent) bool { return nodeChanged(e.ObjectOld, e.ObjectNew) },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Complete(r)
}

// nodeChanged tells the changes that can move reflectors from kubelet's heartbeats.
func nodeChanged(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*corev1.Node)
	n, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	if ready(o) != ready(n) || o.Spec.Unschedulable != n.Spec.Unschedulable || !maps.Equal(o.Labels, n.Labels) {
		return true
	}
	for k := range merged(o.Annotations, n.Annotations) {
		if strings.HasPrefix(k, calico.AnnotationPrefix) && o.Annotations[k] != n.Annotations[k] {
			return true
		}
	}
	return false
}

func merged(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func ready(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// Reconcile plans from the cache and takes the first step, unless paused, dry-run, cooling
// down, or there is nothing to do.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: r.Opts.Namespace}, ns); err != nil {
		return reconcile.Result{}, fmt.Errorf("read namespace %s for the pause annotation: %w", r.Opts.Namespace, err)
	}
	if ns.Annotations[PauseAnnotation] == "true" {
		paused.Set(1)
		return reconcile.Result{RequeueAfter: r.Opts.Resync}, nil
	}
	paused.Set(0)
	objs, _, err := cluster.LoadLiveObjects(ctx, r.Client)
	if err != nil {
		return reconcile.Result{}, err
	}
	p, wake, err := r.look(ctx, calico.NewState(objs), plan.CoreNodes(objs))
	var inf *plan.Infeasible
	switch {
	case errors.As(err, &inf):
		pendingSteps.Set(-1)
		r.reportHeld(ns, nil)
		r.reportOnce(ns, nil, "Warning", "NoSafePlan", inf.Error())
		return reconcile.Result{RequeueAfter: r.Opts.Resync}, nil
	case err != nil:
		return reconcile.Result{}, err
	}
	pendingSteps.Set(float64(len(p.Steps)))
	r.reportHeld(ns, p.Held())
	rest := r.Opts.Resync
	if wake > 0 {
		// A loss leaves --grace, or a node settles: the plan may change then.
		rest = min(rest, wake)
	}
	if len(p.Steps) == 0 {
		r.mu.Lock()
		r.lastReport = ""
		r.mu.Unlock()
		return reconcile.Result{RequeueAfter: rest}, nil
	}
	if p.MeshWasOn {
		// Leaving the mesh is a migration to decide and watch, not a repair: rrguard plan
		// --apply does it; the controller keeps the design once the mesh is off.
		r.reportOnce(ns, nil, "Normal", "MeshOn", fmt.Sprintf("the node-to-node mesh is on: the controller keeps a reflector design once the mesh is off; migrate with rrguard plan --apply (%d steps now)", len(p.Steps)))
		return reconcile.Result{RequeueAfter: rest}, nil
	}
	step := p.Steps[0]
	if r.Opts.DryRun {
		var lines []string
		for _, s := range p.Steps {
			lines = append(lines, fmt.Sprintf("%d. %s", s.Number, s.Summary))
		}
		r.reportOnce(ns, r.regarding(ctx, step), "Normal", "PlannedSteps", fmt.Sprintf("dry run: %d step(s) to the design: %s", len(p.Steps), strings.Join(lines, "; ")))
		return reconcile.Result{RequeueAfter: rest}, nil
	}
	r.mu.Lock()
	wait := r.lastWrite.Add(r.Opts.CoolDown).Sub(r.now())
	r.mu.Unlock()
	if wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	err = plan.ApplyStep(ctx, r.Client, step, FieldManager)
	r.mu.Lock()
	r.lastWrite = r.now()
	r.mu.Unlock()
	regarding := r.regarding(ctx, step)
	if regarding == nil {
		regarding = ns
	}
	if err != nil {
		reason := "error"
		switch {
		case apierrors.IsConflict(err):
			reason = "conflict"
		case apierrors.IsForbidden(err):
			reason = "forbidden"
		case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
			reason = "refused"
		}
		failedSteps.WithLabelValues(reason).Inc()
		r.Recorder.Eventf(regarding, nil, "Warning", "StepFailed", "Reconcile", "%s", truncate(err.Error()))
		logger.Info("step not taken", "step", step.Summary, "reason", reason, "error", err.Error())
		return reconcile.Result{RequeueAfter: r.Opts.CoolDown}, nil
	}
	appliedSteps.Inc()
	r.Recorder.Eventf(regarding, nil, "Normal", "StepApplied", "Reconcile", "%s", truncate(fmt.Sprintf("step 1 of %d: %s", len(p.Steps), step.Summary)))
	logger.Info("step applied", "step", step.Summary, "remaining", len(p.Steps)-1)
	return reconcile.Result{RequeueAfter: r.Opts.CoolDown}, nil
}

// init fills in the defaults of a Reconciler made without SetupWithManager (tests).
func (r *Reconciler) init() {
	if r.now == nil {
		r.now = time.Now
	}
	if r.seen == nil {
		r.seen = &memory{grace: r.Opts.Grace, settle: r.Opts.Settle, nodes: map[string]*seen{}}
	}
}

// look plans from a state with what the controller remembers of its nodes laid over it; wake
// is when that memory next changes a verdict (0: never).
func (r *Reconciler) look(ctx context.Context, state *calico.State, core []*corev1.Node) (*plan.Plan, time.Duration, error) {
	views, err := plan.Nodes(r.Engine, state, core, r.Opts.Plan)
	if err != nil {
		return nil, 0, err
	}
	r.mu.Lock()
	opts := r.Opts.Plan
	var wake time.Duration
	opts.InGrace, opts.Unsettled, wake = r.seen.observe(r.now(), views)
	r.mu.Unlock()
	p, err := plan.Make(ctx, r.Engine, state, core, opts)
	return p, wake, err
}

// reportHeld sets the held-zone metric and sends a ZoneHeld Event for each zone newly held,
// or held for another reason.
func (r *Reconciler) reportHeld(ns *corev1.Namespace, zones []*plan.Zone) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := map[string]string{}
	for _, z := range zones {
		now[z.Name] = z.Held
		zoneHeld.WithLabelValues(z.Name).Set(1)
		if r.held[z.Name] != z.Held {
			r.Recorder.Eventf(ns, nil, "Warning", "ZoneHeld", "Plan", "%s", truncate(fmt.Sprintf("zone %s is left as it is (its reflectors and BGPPeer untouched) while the other zones are repaired: %s", zoneName(z.Name), z.Held)))
		}
	}
	for zone := range r.held {
		if _, still := now[zone]; !still {
			zoneHeld.DeleteLabelValues(zone)
		}
	}
	r.held = now
}

func zoneName(z string) string {
	if z == "" {
		return "(no zone)"
	}
	return z
}

// regarding is the object an Event about a step belongs to: its Node, if it is a Node's.
func (r *Reconciler) regarding(ctx context.Context, s *plan.Step) runtime.Object {
	if s.Kind != calico.KindNode {
		return nil
	}
	n := &corev1.Node{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.Name}, n); err != nil {
		return nil
	}
	return n
}

// reportOnce sends an Event unless the same report was the last one sent.
func (r *Reconciler) reportOnce(ns *corev1.Namespace, regarding runtime.Object, eventType, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastReport == reason+msg {
		return
	}
	r.lastReport = reason + msg
	if regarding == nil {
		regarding = ns
	}
	r.Recorder.Eventf(regarding, nil, eventType, reason, "Plan", "%s", truncate(msg))
}

// truncate keeps an Event's note within the API server's 1 kB limit.
func truncate(s string) string {
	const max = 1000
	if len(s) <= max {
		return s
	}
	cut := s[:max-1]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + "…"
}
