// Package plan searches for a safe way to a route-reflector design: it places reflectors by
// zone and scale, peers them by selector (a few BGPPeers per zone, not per node), and orders
// the migration as steps that the admission engine judges one by one, as the webhook would,
// each against the state the steps before it leave. `rrguard plan` prints or applies them;
// `rrguard controller` executes them one at a time.
package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/selector"
	"github.com/rrguard/rrguard/pkg/validate"
	corev1 "k8s.io/api/core/v1"
)

// Cluster-ID schemes.
const (
	// ClusterIDsSharedPerZone gives the reflectors of a zone one cluster ID; every client
	// peers with all the reflectors of its zone, so no client sees only part of an ID
	// (projectcalico/calico#2735).
	ClusterIDsSharedPerZone = "shared-per-zone"
	// ClusterIDsUnique gives every reflector its own cluster ID.
	ClusterIDsUnique = "unique"
)

// DefaultZoneLabel is the well-known Kubernetes zone label.
const DefaultZoneLabel = "topology.kubernetes.io/zone"

// FieldManager is the server-side apply field manager of every object rrguard plan writes.
const FieldManager = "rrguard-plan"

// PeerPrefix starts the names of the BGPPeers a plan writes; the plan never touches others.
const PeerPrefix = "rrguard-"

// ReflectorsPeer is the BGPPeer that peers the reflectors with one another (and, while the
// mesh is still on, every node with the reflectors).
const ReflectorsPeer = PeerPrefix + "reflectors"

// Options are the knobs of a plan; zero values take the defaults.
type Options struct {
	// ZoneLabel is the node label whose value is the zone (default topology.kubernetes.io/zone).
	ZoneLabel string
	// ReflectorsPerZone is the least number of reflectors per zone (default and minimum:
	// the engine's minReflectors, 2 unless configured).
	ReflectorsPerZone int
	// ClientsPerReflector adds a reflector per so many nodes of a zone (0: off).
	ClientsPerReflector int
	// MaxPerZone caps the reflectors per zone (default 5).
	MaxPerZone int
	// Eligible, Exclude and Prefer are Calico selectors over node labels: only eligible
	// nodes may be reflectors, excluded ones never, preferred ones first.
	Eligible, Exclude, Prefer string
	// ClusterIDs is shared-per-zone (default) or unique.
	ClusterIDs string
	// AS is the AS number the design is for (default: the cluster's); every node must speak it.
	AS uint32
	// Group is the API group of the BGPPeers and BGPConfiguration written: projectcalico.org
	// (default) or crd.projectcalico.org. Objects that exist keep their group.
	Group string
	// InGrace names nodes that look unfit now (NotReady, cordoned, excluded) but not yet for
	// --grace: a reflector among them is kept as it is, neither replaced nor retired.
	// Unsettled names nodes that look fit now but were unfit within --settle: none is made a
	// reflector, and a reflector among them is replaced and retired as a lost one is. The
	// controller fills both from what it saw, so that a flapping node moves nothing back and
	// forth; rrguard plan takes every node as it is now.
	InGrace, Unsettled map[string]bool
}

// withDefaults fills in the zero fields for an engine's configuration and checks the knobs.
func (o Options) withDefaults(cfg validate.Config) (Options, error) {
	if o.ZoneLabel == "" {
		o.ZoneLabel = DefaultZoneLabel
	}
	if o.ReflectorsPerZone == 0 {
		o.ReflectorsPerZone = max(2, cfg.MinReflectors)
	}
	if o.ReflectorsPerZone < cfg.MinReflectors || o.ReflectorsPerZone < 2 {
		return o, &UsageError{fmt.Errorf("--reflectors-per-zone %d: at least %d (every client needs minReflectors = %d; one reflector is a single point of failure)", o.ReflectorsPerZone, max(2, cfg.MinReflectors), cfg.MinReflectors)}
	}
	if o.ClientsPerReflector < 0 {
		return o, &UsageError{fmt.Errorf("--clients-per-reflector %d: give a positive number of clients per reflector, or 0 to turn the ratio off", o.ClientsPerReflector)}
	}
	if o.MaxPerZone == 0 {
		o.MaxPerZone = max(5, o.ReflectorsPerZone)
	}
	if o.MaxPerZone < o.ReflectorsPerZone {
		return o, &UsageError{fmt.Errorf("--max-per-zone %d is below --reflectors-per-zone %d: raise it", o.MaxPerZone, o.ReflectorsPerZone)}
	}
	switch o.ClusterIDs {
	case "":
		o.ClusterIDs = ClusterIDsSharedPerZone
	case ClusterIDsSharedPerZone, ClusterIDsUnique:
	default:
		return o, &UsageError{fmt.Errorf("--cluster-ids %q: use %s or %s", o.ClusterIDs, ClusterIDsSharedPerZone, ClusterIDsUnique)}
	}
	if o.ClusterIDs == ClusterIDsSharedPerZone && cfg.ClusterIDPolicy == validate.ClusterIDUnique ||
		o.ClusterIDs == ClusterIDsUnique && cfg.ClusterIDPolicy == validate.ClusterIDShared {
		return o, &UsageError{fmt.Errorf("--cluster-ids %s contradicts clusterIDPolicy: %s in rrguard.yaml: the webhook would refuse the plan's cluster IDs", o.ClusterIDs, cfg.ClusterIDPolicy)}
	}
	switch o.Group {
	case "":
		o.Group = calico.GroupV3
	case calico.GroupV3, calico.GroupCRD:
	default:
		return o, &UsageError{fmt.Errorf("group %q: use %s or %s", o.Group, calico.GroupV3, calico.GroupCRD)}
	}
	if !labelKey.MatchString(o.ZoneLabel) || !labelKey.MatchString(cfg.ReflectorLabel) {
		return o, &UsageError{fmt.Errorf("label keys %q and %q must be made of letters, digits, '_', '.', '/' and '-' to be used in a Calico selector", o.ZoneLabel, cfg.ReflectorLabel)}
	}
	return o, nil
}

var labelKey = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// UsageError is a bad knob: the CLI exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Infeasible says why no safe plan exists for the input: the CLI prints it and exits 1.
type Infeasible struct {
	Reason string
}

func (e *Infeasible) Error() string { return "no safe plan: " + e.Reason }

// Plan is the way from a cluster state to a reflector design, step by step.
type Plan struct {
	// AS is the AS number of the design; MeshWasOn tells whether the plan starts with the mesh on.
	AS        uint32 `json:"as"`
	MeshWasOn bool   `json:"meshWasOn"`
	// ZoneLabel, ReflectorLabel and ClusterIDs are the knobs the plan was made with.
	ZoneLabel      string  `json:"zoneLabel"`
	ReflectorLabel string  `json:"reflectorLabel"`
	ClusterIDs     string  `json:"clusterIDs"`
	Zones          []*Zone `json:"zones"`
	Steps          []*Step `json:"steps"`
	// Notes are warn-level findings of the final state's audit, and anything else to know.
	Notes []string `json:"notes,omitempty"`
}

// planner holds what a plan is made from while it is made.
type planner struct {
	ctx      context.Context
	engine   *validate.Engine
	opts     Options
	as       uint32
	label    string
	state    *calico.State
	cordoned map[string]bool
	core     map[string]*corev1.Node // the core/v1 Node of each node that has one
	// zoneNodes are the names of each zone's nodes, as classify read them.
	zoneNodes map[string][]string
	// graceKept counts the reflectors kept though unfit, as InGrace asked.
	graceKept int
	// start is the state the plan starts from, and its deny findings.
	start *planState
}

// Make plans the way from the objects (core/v1 Nodes, BGPPeers, BGPConfigurations, as
// cluster.LoadFiles or cluster.LoadLiveObjects read them) to the design the options
// describe. Every step is judged by the engine as the webhook would see it; the error is an
// *Infeasible when no safe plan exists, a *UsageError for bad options. With the mesh off, a
// zone with no eligible or safe choice is held (Zone.Held) and the others are planned.
func Make(ctx context.Context, engine *validate.Engine, state *calico.State, coreNodes []*corev1.Node, opts Options) (*Plan, error) {
	p, cands, err := newPlanner(ctx, engine, state, coreNodes, opts)
	if err != nil {
		return nil, err
	}
	if err := p.begin(); err != nil {
		return nil, err
	}
	held := map[string]string{}
	for {
		zones, err := p.place(cands, held)
		if err != nil {
			return nil, err
		}
		steps, notes, err := p.steps(zones)
		var blocked *zoneBlocked
		if errors.As(err, &blocked) {
			if blocked.zone == nil || state.Mesh() || held[blocked.zone.Name] != "" {
				return nil, blocked.first
			}
			// That zone's next step is not safe: leave it as it is, and plan the others.
			held[blocked.zone.Name] = "its next step is not safe: " + blocked.zoneErr.Reason
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Plan{AS: p.as, MeshWasOn: state.Mesh(), ZoneLabel: p.opts.ZoneLabel, ReflectorLabel: p.label, ClusterIDs: p.opts.ClusterIDs,
			Zones: zones, Steps: steps, Notes: notes}, nil
	}
}

// NodeView is a node as placement sees it before the controller's memory is laid over it.
type NodeView struct {
	Zone string
	// Unfit says why the node cannot be a reflector now ("" when it can).
	Unfit string
	// Reflector is true for a node that holds a cluster ID.
	Reflector bool
}

// Nodes returns how placement sees each node now: the controller remembers these to tell a
// lasting loss from a flap (Options.InGrace, Options.Unsettled).
func Nodes(engine *validate.Engine, state *calico.State, coreNodes []*corev1.Node, opts Options) (map[string]NodeView, error) {
	opts.InGrace, opts.Unsettled = nil, nil
	_, cands, err := newPlanner(context.Background(), engine, state, coreNodes, opts)
	if err != nil {
		return nil, err
	}
	out := make(map[string]NodeView, len(cands))
	for _, c := range cands {
		out[c.name] = NodeView{Zone: c.zone, Unfit: c.why, Reflector: c.clusterID != ""}
	}
	return out, nil
}

// Held returns the zones the plan leaves as they are.
func (p *Plan) Held() []*Zone {
	var out []*Zone
	for _, z := range p.Zones {
		if z.Held != "" {
			out = append(out, z)
		}
	}
	return out
}

// newPlanner checks the options and reads every node as placement sees it.
func newPlanner(ctx context.Context, engine *validate.Engine, state *calico.State, coreNodes []*corev1.Node, opts Options) (*planner, []candidate, error) {
	o, err := opts.withDefaults(engine.Config())
	if err != nil {
		return nil, nil, err
	}
	p := &planner{ctx: ctx, engine: engine, opts: o, state: state, label: engine.Config().ReflectorLabel,
		cordoned: map[string]bool{}, core: map[string]*corev1.Node{}, zoneNodes: map[string][]string{}}
	for _, k := range coreNodes {
		if n := state.Node(k.Name); n != nil {
			p.core[k.Name] = withCalicoFields(k, n)
		}
		if k.Spec.Unschedulable {
			p.cordoned[k.Name] = true
		}
	}
	p.as = o.AS
	if p.as == 0 {
		p.as = state.GlobalAS()
	}
	cands, err := p.classify()
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cands {
		p.zoneNodes[c.zone] = append(p.zoneNodes[c.zone], c.name)
	}
	return p, cands, nil
}

// CoreNodes returns the core/v1 Nodes among objects (their spec.unschedulable marks cordoned
// nodes; their whole object is what an update of a node sends).
func CoreNodes(objs []*calico.Object) []*corev1.Node {
	var out []*corev1.Node
	for _, o := range objs {
		if o.CoreNode != nil {
			out = append(out, o.CoreNode)
		}
	}
	return out
}

// withCalicoFields returns the core Node as the cluster holds it once a v3 Node manifest laid
// over it in the input (cluster.Manifests.State) was written by calicoctl: the BGP fields in
// annotations, the Calico labels in projectcalico.org/labels. A node without such an overlay
// is returned as it is.
func withCalicoFields(k *corev1.Node, n *calico.Node) *corev1.Node {
	c := calico.NodeFromCore(k)
	if c.IPv4Address == n.IPv4Address && c.IPv6Address == n.IPv6Address && c.ASNumber == n.ASNumber && c.ClusterID == n.ClusterID && maps.Equal(c.CalicoLabels, n.CalicoLabels) {
		return k
	}
	out := k.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for key, v := range map[string]string{calico.AnnotationIPv4Address: n.IPv4Address, calico.AnnotationIPv6Address: n.IPv6Address,
		calico.AnnotationASNumber: n.ASNumber, calico.AnnotationClusterID: n.ClusterID} {
		if v == "" {
			delete(out.Annotations, key)
		} else {
			out.Annotations[key] = v
		}
	}
	delete(out.Annotations, calico.AnnotationLabels)
	if len(n.CalicoLabels) > 0 {
		if raw, err := json.Marshal(n.CalicoLabels); err == nil {
			out.Annotations[calico.AnnotationLabels] = string(raw)
		}
	}
	return out
}

// selectorValue quotes a label value for a Calico selector (no escapes exist in the grammar).
func selectorValue(v string) (string, error) {
	switch {
	case !strings.Contains(v, "'"):
		return "'" + v + "'", nil
	case !strings.Contains(v, `"`):
		return `"` + v + `"`, nil
	}
	return "", &Infeasible{Reason: fmt.Sprintf("zone %q holds both kinds of quote: a Calico selector cannot name it; rename the zone", v)}
}

// zoneTerm is the selector term for the nodes of a zone.
func (p *planner) zoneTerm(zone string) (string, error) {
	if zone == "" {
		// Nodes without the label, and nodes with it empty.
		return "(!has(" + p.opts.ZoneLabel + ") || " + p.opts.ZoneLabel + " == '')", nil
	}
	q, err := selectorValue(zone)
	if err != nil {
		return "", err
	}
	return p.opts.ZoneLabel + " == " + q, nil
}

// zonePeerName names the BGPPeer of a zone's clients: a DNS subdomain name.
func zonePeerName(zone string) string {
	if zone == "" {
		return PeerPrefix + "zone-none"
	}
	var b strings.Builder
	for _, r := range strings.ToLower(zone) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-.")
	if name != zone {
		// Two zones must not share a peer name: say which zone it was.
		name = fmt.Sprintf("%s-%08x", name, fnv32(zone))
	}
	return PeerPrefix + "zone-" + name
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// checkSelector parses a selector the plan writes: a bug (or a label key Calico cannot read)
// must never reach the cluster.
func checkSelector(expr string) error {
	if _, err := selector.Parse(expr); err != nil {
		return &UsageError{fmt.Errorf("the plan would write a selector that does not parse (check --zone-label and reflectorLabel): %w", err)}
	}
	return nil
}
