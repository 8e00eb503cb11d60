package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/audit"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// The paths the webhook configurations call.
const (
	ValidatePath = "/validate"
	MutatePath   = "/mutate"
)

// Options configures the server.
type Options struct {
	// Host and Port the webhook listens on (Port 9443 by default).
	Host string
	Port int
	// CertDir holds tls.crt and tls.key; certificate rotation on disk is picked up live.
	CertDir string
	// MetricsAddr and ProbeAddr are the Prometheus and health endpoints ("0" disables);
	// PprofAddr serves net/http/pprof's profiles ("" or "0": off).
	MetricsAddr, ProbeAddr, PprofAddr string
	Config                            validate.Config
	// Audit configures the periodic audit; AuditDisabled turns it off.
	Audit         audit.Options
	AuditDisabled bool
	// LeaderElection makes replicas elect the one that writes the audit report (admission is
	// served by every replica). LeaderElectionNamespace holds the Lease.
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	// PolicyDirs are directories of Rego policies (a mounted ConfigMap), reloaded when they
	// change; PolicyTimeout bounds one policy's evaluation (policy.DefaultTimeout when zero).
	PolicyDirs    []string
	PolicyTimeout time.Duration
	// HTTP bounds the webhook server's clients; zero fields take DefaultHTTPOptions.
	HTTP HTTPOptions
	// Limits bound the admission requests held at once; zero fields take DefaultLimits.
	Limits Limits
	// Recorder receives the server's metrics; nil: Prometheus metrics on controller-runtime's
	// registry, served on MetricsAddr.
	Recorder Recorder
}

// InputError is an error in what the server is given (the policies, rrguard.yaml) rather
// than in starting it: cmd/webhook exits 2 on it, as on a bad flag.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Server is rrguard's admission server: a controller-runtime manager with the informer cache
// the decisions are taken against.
type Server struct {
	Manager  manager.Manager
	Store    *cluster.Store
	Reviewer *admission.Reviewer
	// Auditor is nil when the audit is disabled.
	Auditor *audit.Auditor
	synced  atomic.Bool
	// handlers are the informers' event handler registrations that fill Store: admission opens
	// only once each has delivered its initial list (the informer caches syncing is not enough:
	// the handlers run behind them).
	handlers []toolscache.ResourceEventHandlerRegistration
	// warm is kicked after each cluster change and policy reload: the policies are bound to
	// the new snapshot in the background (see prepare).
	warm chan struct{}
	rec  Recorder
}

// prepareDelay is how long prepare waits for a burst of changes to settle.
const prepareDelay = 100 * time.Millisecond

// kick asks prepare to bind the policies to the current snapshot.
func (s *Server) kick() {
	select {
	case s.warm <- struct{}{}:
	default:
	}
}

// prepare builds, in the background, the snapshot of the cluster after a change and binds
// the policies to it (data.rrguard.cluster, the OPA store, the prepared queries), so that the
// first admission request after the change does not wait for it. A request always binds the
// snapshot it judges with, so it never sees policy data of another state: when it comes
// before prepare is done it waits for the same work (or does it for a newer snapshot).
func (s *Server) prepare(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.warm:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(prepareDelay):
		}
		select { // changes during the delay are covered by this round
		case <-s.warm:
		default:
		}
		if s.synced.Load() {
			s.Reviewer.Engine.PrepareSnapshot(s.Store.Snapshot())
		}
	}
}

// NewServer loads the policies and builds the manager, the webhook handlers and the
// informers. Policies that do not load are an *InputError.
func NewServer(ctx context.Context, cfg *rest.Config, opts Options) (*Server, error) {
	rec := opts.Recorder
	if rec == nil {
		r, err := newPrometheusRecorder(metrics.Registry)
		if err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		rec = r
	}
	s := &Server{Store: cluster.NewStore(), Reviewer: &admission.Reviewer{Engine: validate.New(opts.Config)}, warm: make(chan struct{}, 1), rec: rec}
	policies, err := s.usePolicies(ctx, opts)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if opts.Port == 0 {
		opts.Port = 9443
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress: opts.ProbeAddr,
		PprofBindAddress:       opts.PprofAddr,
		WebhookServer:          newHTTPSServer(opts.Host, opts.Port, opts.CertDir, opts.HTTP.withDefaults()),
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields(),
			ByObject: map[client.Object]cache.ByObject{&corev1.Node{}: {Transform: slimNode}}},
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              defaultString(opts.LeaderElectionID, "rrguard-audit"),
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	s.Manager = mgr
	if len(opts.PolicyDirs) > 0 {
		if err := mgr.Add(policies); err != nil {
			return nil, err
		}
	}
	if !opts.AuditDisabled {
		a, err := audit.New(s.Reviewer.Engine, s.Store.Snapshot, mgr.GetClient(), mgr.GetEventRecorder("rrguard"), opts.Audit)
		if err != nil {
			return nil, err
		}
		s.Auditor = a
		if err := mgr.Add(a); err != nil {
			return nil, err
		}
	}
	s.Store.OnChange = func() {
		if s.synced.Load() {
			if s.Auditor != nil {
				s.Auditor.Changed()
			}
			s.kick()
		}
	}
	if err := mgr.Add(notElected(s.prepare)); err != nil {
		return nil, err
	}
	if err := s.watch(ctx); err != nil {
		return nil, err
	}
	hooks := mgr.GetWebhookServer()
	logger := mgr.GetLogger().WithName("admission")
	limits := newInFlight(opts.Limits, s.rec)
	hooks.Register(ValidatePath, &reviewHandler{webhook: "validate", ready: s.synced.Load, decide: s.validate, log: logger, rec: s.rec, limits: limits})
	hooks.Register(MutatePath, &reviewHandler{webhook: "mutate", ready: s.synced.Load, decide: s.mutate, log: logger, rec: s.rec, limits: limits})
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", hooks.StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache-synced", func(*http.Request) error {
		if !s.synced.Load() {
			return fmt.Errorf("the cluster model is not complete yet: informers are still delivering their initial lists")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	// Every replica serves admission: waiting for the model is not leader-elected.
	if err := mgr.Add(notElected(func(ctx context.Context) error {
		if s.awaitModel(ctx) {
			snap := s.Store.Snapshot()
			s.synced.Store(true)
			s.kick()
			log.FromContext(ctx).Info("cluster model complete; admission open", "nodes", len(snap.State.NodeNames()), "bgpPeers", len(snap.State.PeerNames()), "mesh", snap.State.Mesh())
		}
		<-ctx.Done()
		return nil
	})); err != nil {
		return nil, err
	}
	return s, nil
}

// awaitModel waits until the informer caches have synced and every event handler has
// delivered their initial lists into the store, then builds the snapshot of that complete
// model (so the first decision does not pay for it). False when ctx ends first.
func (s *Server) awaitModel(ctx context.Context) bool {
	if !s.Manager.GetCache().WaitForCacheSync(ctx) {
		return false
	}
	synced := make([]toolscache.InformerSynced, len(s.handlers))
	for i, h := range s.handlers {
		synced[i] = h.HasSynced
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return false
	}
	s.Store.Snapshot()
	return true
}

// notElected is a runnable that runs on every replica.
type notElected func(context.Context) error

func (f notElected) Start(ctx context.Context) error { return f(ctx) }
func (notElected) NeedLeaderElection() bool          { return false }

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start runs the server until ctx ends.
func (s *Server) Start(ctx context.Context) error { return s.Manager.Start(ctx) }

// Synced reports whether the model is complete and admission open.
func (s *Server) Synced() bool { return s.synced.Load() }

// watch registers informers for Nodes and for the Calico kinds whose API is installed.
func (s *Server) watch(ctx context.Context) error {
	c := s.Manager.GetCache()
	inf, err := c.GetInformer(ctx, &corev1.Node{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("watch Nodes: %w", err)
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o interface{}) { s.nodeEvent(o) },
		UpdateFunc: func(_, o interface{}) { s.nodeEvent(o) },
		DeleteFunc: func(o interface{}) {
			if n, ok := tombstone(o).(*corev1.Node); ok {
				s.Store.Delete("", calico.KindNode, n.Name)
			}
		},
	})
	if err != nil {
		return err
	}
	s.handlers = append(s.handlers, reg)
	mapper := s.Manager.GetRESTMapper()
	logger := log.FromContext(ctx)
	watched := 0
	for _, gvk := range cluster.CalicoKinds {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if meta.IsNoMatchError(err) {
				logger.Info("Calico API not installed; not watching it", "kind", gvk.String())
				continue
			}
			return fmt.Errorf("look up %s: %w", gvk, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		inf, err := c.GetInformer(ctx, u, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watch %s: %w", gvk, err)
		}
		gvk := gvk
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o interface{}) { s.calicoEvent(ctx, gvk, o) },
			UpdateFunc: func(_, o interface{}) { s.calicoEvent(ctx, gvk, o) },
			DeleteFunc: func(o interface{}) {
				if obj, ok := tombstone(o).(client.Object); ok {
					s.Store.Delete(gvk.Group, gvk.Kind, obj.GetName())
					s.rec.Unreadable(s.Store.Unreadable())
				}
			},
		})
		if err != nil {
			return err
		}
		s.handlers = append(s.handlers, reg)
		watched++
	}
	if watched == 0 {
		logger.Info("no Calico BGPPeer/BGPConfiguration API found: only Nodes are checked")
	}
	return nil
}

// slimNode is what the cache keeps of a core/v1 Node: everything rrguard reads (metadata
// without managed fields, spec, conditions, addresses), not the kubelet's image list, volumes
// and system info, which at 5,000 real nodes (up to 50 images each) would be most of the
// webhook's memory.
func slimNode(o interface{}) (interface{}, error) {
	o, err := cache.TransformStripManagedFields()(o)
	if n, ok := o.(*corev1.Node); ok {
		n.Status.Images, n.Status.VolumesInUse, n.Status.VolumesAttached = nil, nil, nil
		n.Status.NodeInfo = corev1.NodeSystemInfo{}
	}
	return o, err
}

func tombstone(o interface{}) interface{} {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return o
}

func (s *Server) nodeEvent(o interface{}) {
	if n, ok := o.(*corev1.Node); ok {
		s.Store.UpsertNode(n)
	}
}

func (s *Server) calicoEvent(ctx context.Context, gvk schema.GroupVersionKind, o interface{}) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	if u.GetKind() == "" {
		u.SetGroupVersionKind(gvk)
	}
	if _, err := s.Store.Upsert(u); err != nil {
		log.FromContext(ctx).Info("cannot read Calico object; it is left out of the model", "kind", gvk.Kind, "name", u.GetName(), "error", err.Error())
	}
	s.rec.Unreadable(s.Store.Unreadable())
}

// validate judges a request against the cluster with the changes this replica allowed that
// the informers have not delivered yet, one decision at a time (cluster.Store.Judge): two
// changes harmless alone cannot together cut a node off on one replica.
func (s *Server) validate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	start := time.Now()
	var resp *admissionv1.AdmissionResponse
	var findings []validate.Finding
	s.Store.Judge(start, func(snap *model.Snapshot) (*model.Change, *model.Snapshot) {
		var d *admission.Decision
		resp, d = s.Reviewer.RespondDecision(ctx, req, snap, admission.Validating)
		if d == nil {
			findings = nil
			return nil, nil
		}
		findings = d.Findings
		if !resp.Allowed || d.Change.DryRun || (d.Change.Object == nil && d.Change.Old == nil) {
			d.Release()
			return nil, nil
		}
		return &d.Change, d.After
	})
	s.rec.Answered("validate", req.Kind.Kind, resp.Allowed, findings, time.Since(start))
	return resp
}

func (s *Server) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	start := time.Now()
	resp, _ := s.Reviewer.Respond(ctx, req, nil, admission.Mutating)
	s.rec.Answered("mutate", req.Kind.Kind, resp.Allowed, nil, time.Since(start))
	return resp
}
