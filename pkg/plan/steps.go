package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	libapiv3 "github.com/projectcalico/calico/libcalico-go/lib/apis/v3"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/mutate"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// The phases of a plan, in the order they run.
const (
	PhasePeer      = "peer"
	PhaseReflector = "reflector"
	PhaseRetire    = "retire"
	PhaseMesh      = "mesh"
)

// The operations of a step.
const (
	// OpApply is a server-side apply of Object (a `kubectl apply` of it does the same).
	OpApply = "apply"
	// OpRemove removes a Node's RemoveLabels and RemoveAnnotations and sets its
	// SetAnnotations (a merge patch; `kubectl label NODE KEY-` and `kubectl annotate NODE
	// KEY-` do the same).
	OpRemove = "remove"
)

// Step is one write, so one admission request: the webhook judges each on its own.
type Step struct {
	Number    int    `json:"number"`
	Phase     string `json:"phase"`
	Summary   string `json:"summary"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Group     string `json:"group"`
	Version   string `json:"version"`
	Name      string `json:"name"`
	// Object is what is applied: for a core/v1 Node only the label and annotation the plan
	// owns, for Calico objects the whole object.
	Object            map[string]any `json:"object,omitempty"`
	RemoveLabels      []string       `json:"removeLabels,omitempty"`
	RemoveAnnotations []string       `json:"removeAnnotations,omitempty"`
	// SetAnnotations: the Calico labels without the reflector label, when calicoctl put it there.
	SetAnnotations map[string]string `json:"setAnnotations,omitempty"`
	// Warnings are the webhook's warnings for the step (it allows it).
	Warnings []string `json:"warnings,omitempty"`
}

// planState is the cluster as the steps so far leave it.
type planState struct {
	snap   *model.Snapshot
	core   map[string]*corev1.Node
	denied map[string]bool // deny findings of the state the plan starts from
	steps  []*Step
}

// begin audits the state the plan starts from: a step may leave its deny findings as they
// are, and add none.
func (p *planner) begin() error {
	ps := &planState{snap: model.NewSnapshot(p.state), core: p.core, denied: map[string]bool{}}
	for _, f := range p.engine.Audit(p.ctx, ps.snap) {
		if f.Action != validate.Deny {
			continue
		}
		if f.Rule == validate.RuleRoutePropagation && !p.state.Mesh() {
			return &Infeasible{Reason: "the node-to-node mesh is off and nodes already miss routes (" + f.Message + "): turn the mesh back on first (nodeToNodeMeshEnabled: true restores every route at once, whatever the peers), then plan the way to reflectors from there"}
		}
		ps.denied[findingKey(f)] = true
	}
	p.start = ps
	return nil
}

// action is one write of the plan: take makes its step from the state the steps before it
// leave and judges it there, changing ps only when the step is safe (nil with no step when
// the cluster has it already). zone is the zone the write serves (nil for the reflectors'
// BGPPeer and the mesh switch).
type action struct {
	zone *Zone
	take func(*planState) error
}

// zoneBlocked says that no action left could be taken: first is the first one's reason, zone
// the first zone whose action could not be taken (nil if only cluster-wide ones were left).
type zoneBlocked struct {
	first   *Infeasible
	zone    *Zone
	zoneErr *Infeasible
}

func (e *zoneBlocked) Error() string { return e.first.Error() }

// order takes the actions in the order given wherever it can. When the next one cannot be
// taken yet, it takes the first later one that can, then tries the earlier ones again: a
// cluster that drifted while an --apply was interrupted (a client moved to a new zone, the
// mesh already off) may need its new zone's reflector before the reflector peering narrows.
// Every step is still judged against the state the steps before it leave.
func (p *planner) order(ps *planState, actions []action) error {
	for len(actions) > 0 {
		blocked := &zoneBlocked{}
		taken := -1
		for i, a := range actions {
			err := a.take(ps)
			var inf *Infeasible
			if err != nil && !errors.As(err, &inf) {
				return err
			}
			if err == nil {
				taken = i
				break
			}
			if blocked.first == nil {
				blocked.first = inf
			}
			if blocked.zone == nil && a.zone != nil {
				blocked.zone, blocked.zoneErr = a.zone, inf
			}
		}
		if taken < 0 {
			return blocked
		}
		actions = slices.Delete(actions, taken, taken+1)
	}
	return nil
}

// steps orders the migration and judges each step against the state before it.
func (p *planner) steps(zones []*Zone) ([]*Step, []string, error) {
	ps := &planState{snap: p.start.snap, core: maps.Clone(p.start.core), denied: p.start.denied}
	reflectors := "has(" + p.label + ")"
	peerReflectors := func(nodeSel, summary string) action {
		return action{take: func(ps *planState) error { return p.peer(ps, ReflectorsPeer, nodeSel, reflectors, summary) }}
	}
	zonePeers, err := p.zonePeers(zones)
	if err != nil {
		return nil, nil, err
	}
	var actions []action
	if p.state.Mesh() {
		// While the mesh is on, a node that becomes a reflector leaves it: every node must
		// already peer with it, not only its zone, or the other zones lose its routes.
		actions = append(actions, peerReflectors("all()", "peer every node with the reflectors while the mesh is still on"))
		actions = append(actions, p.reflectors(zones)...)
		actions = append(actions, zonePeers...)
		actions = append(actions, p.retire(zones)...)
		actions = append(actions, action{take: p.meshOff},
			peerReflectors(reflectors, "narrow to reflector-to-reflector peering: clients keep their zone's reflectors"))
	} else {
		actions = append(actions, peerReflectors(reflectors, "peer the reflectors with one another"))
		actions = append(actions, zonePeers...)
		actions = append(actions, p.reflectors(zones)...)
		actions = append(actions, p.retire(zones)...)
	}
	if err := p.order(ps, actions); err != nil {
		return nil, nil, err
	}
	var waiting []string
	for _, z := range zones {
		if z.Held != "" {
			waiting = append(waiting, "zone "+z.Display()+" is held")
		}
	}
	if p.graceKept > 0 {
		waiting = append(waiting, fmt.Sprintf("%d lost reflector(s) are within --grace", p.graceKept))
	}
	var notes, broken []string
	for _, f := range p.engine.Audit(p.ctx, ps.snap) {
		line := fmt.Sprintf("[%s] %s", f.Rule, f.Message)
		switch {
		case f.Action == validate.Deny && ps.denied[findingKey(f)] && len(waiting) > 0:
			// The design is not reached yet, and no step made this worse.
			notes = append(notes, "the final state still has "+line+" (so before the plan; "+strings.Join(waiting, ", ")+")")
		case f.Action == validate.Deny && ps.denied[findingKey(f)]:
			broken = append(broken, line+" (already so before the plan)")
		case f.Action == validate.Deny:
			broken = append(broken, line)
		default:
			notes = append(notes, "the final state has "+line)
		}
	}
	if len(broken) > 0 {
		return nil, nil, &Infeasible{Reason: "the planned design would still have deny-level findings: " + strings.Join(broken, "; ") + "; fix them (rrguard audit lists them) and plan again"}
	}
	if p.opts.ClusterIDs == ClusterIDsUnique {
		if n := len(reflectorSet(zones)); n > 8 {
			notes = append(notes, fmt.Sprintf("%d reflectors with unique cluster IDs all peer with one another: with add-paths every order of reflectors is a path of its own, and real BIRD 1.6 did not settle at 16; prefer --cluster-ids shared-per-zone", n))
		}
	}
	return ps.steps, notes, nil
}

func findingKey(f validate.Finding) string {
	return f.Rule + "|" + f.Object.Kind + "|" + f.Object.Name + "|" + f.Field
}

// reflectors gives every planned reflector its cluster ID and label, never more than
// --max-per-zone in a zone at once: past it, a retirement of the zone comes first.
func (p *planner) reflectors(zones []*Zone) []action {
	var out []action
	for _, z := range zones {
		if z.Held != "" {
			continue
		}
		for _, r := range z.Reflectors {
			out = append(out, action{zone: z, take: func(ps *planState) error {
				n := ps.snap.State.Node(r.Node)
				if _, labelled := n.Label(p.label); labelled && n.ClusterID == r.ClusterID {
					return nil
				}
				if have := p.reflectorsIn(ps, z.Name); !n.IsReflector() && have >= p.opts.MaxPerZone {
					return &Infeasible{Reason: fmt.Sprintf("zone %s has %d reflectors (--max-per-zone %d): one must retire before %s is made one", z.Display(), have, p.opts.MaxPerZone, r.Node)}
				}
				verb := "make " + r.Node + " a reflector"
				if r.Kept {
					verb = "set reflector " + r.Node + "'s cluster ID and label"
				}
				summary := fmt.Sprintf("%s of zone %s (cluster ID %s, label %s)", verb, z.Display(), r.ClusterID, p.label)
				return p.nodeStep(ps, r.Node, r.ClusterID, PhaseReflector, summary)
			}})
		}
	}
	return out
}

// reflectorsIn counts the nodes of a zone that hold a cluster ID in the state ps holds.
func (p *planner) reflectorsIn(ps *planState, zone string) int {
	n := 0
	for _, name := range p.zoneNodes[zone] {
		if node := ps.snap.State.Node(name); node != nil && node.IsReflector() {
			n++
		}
	}
	return n
}

// retire turns the reflectors that no longer fit back into clients, once their replacements
// are peered.
func (p *planner) retire(zones []*Zone) []action {
	var out []action
	for _, z := range zones {
		if z.Held != "" {
			continue
		}
		for _, r := range z.Retired {
			summary := fmt.Sprintf("retire reflector %s of zone %s (%s): it becomes a client", r.Node, z.Display(), r.Reason)
			out = append(out, action{zone: z, take: func(ps *planState) error { return p.nodeStep(ps, r.Node, "", PhaseRetire, summary) }})
		}
	}
	return out
}

// zonePeers peers each zone's clients with the zone's reflectors (and the fallback zones').
func (p *planner) zonePeers(zones []*Zone) ([]action, error) {
	var out []action
	for _, z := range zones {
		if z.Clients == 0 || z.Held != "" {
			continue
		}
		own, err := p.zoneTerm(z.Name)
		if err != nil {
			return nil, err
		}
		terms := []string{own}
		for _, f := range z.Fallback {
			t, err := p.zoneTerm(f)
			if err != nil {
				return nil, err
			}
			terms = append(terms, t)
		}
		peers := "has(" + p.label + ") && " + terms[0]
		if len(terms) > 1 {
			peers = "has(" + p.label + ") && (" + strings.Join(terms, " || ") + ")"
		}
		summary := fmt.Sprintf("peer zone %s's clients with its reflectors", z.Display())
		if len(z.Fallback) > 0 {
			summary += " and, as it has too few, with zone " + strings.Join(z.Fallback, ", ") + "'s"
		}
		out = append(out, action{zone: z, take: func(ps *planState) error {
			return p.peer(ps, zonePeerName(z.Name), "!has("+p.label+") && "+own, peers, summary)
		}})
	}
	return out, nil
}

// peer applies a BGPPeer with these selectors, unless it already has them.
func (p *planner) peer(ps *planState, name, nodeSel, peerSel, summary string) error {
	for _, s := range []string{nodeSel, peerSel} {
		if err := checkSelector(s); err != nil {
			return err
		}
	}
	var old *calico.Object
	next := &apiv3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name}}
	group := p.opts.Group
	if cur := ps.snap.State.Peer(name); cur != nil {
		if cur.Spec.NodeSelector == nodeSel && cur.Spec.PeerSelector == peerSel {
			return nil
		}
		group = cur.Group
		old = &calico.Object{Kind: calico.KindBGPPeer, Group: cur.Group, Name: name, Peer: cur.BGPPeer}
		next = cur.DeepCopy()
	}
	next.Spec.NodeSelector, next.Spec.PeerSelector = nodeSel, peerSel
	next.TypeMeta = metav1.TypeMeta{APIVersion: group + "/" + versionOf(group), Kind: calico.KindBGPPeer}
	applied := map[string]any{
		"apiVersion": next.APIVersion, "kind": calico.KindBGPPeer,
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"nodeSelector": nodeSel, "peerSelector": peerSel},
	}
	st := &Step{Phase: PhasePeer, Summary: fmt.Sprintf("%s (BGPPeer %s: nodeSelector %s, peerSelector %s)", summary, name, nodeSel, peerSel),
		Operation: OpApply, Kind: calico.KindBGPPeer, Group: group, Version: versionOf(group), Name: name, Object: applied}
	return p.judge(ps, st, old, &calico.Object{Kind: calico.KindBGPPeer, Group: group, Name: name, Peer: next}, next)
}

// meshOff turns the node-to-node mesh off in the default BGPConfiguration, keeping its other
// fields.
func (p *planner) meshOff(ps *planState) error {
	var old *calico.Object
	next := &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: calico.DefaultConfigName}}
	group := p.opts.Group
	if cur := ps.snap.State.Default(); cur != nil {
		group = cur.Group
		old = &calico.Object{Kind: calico.KindBGPConfiguration, Group: cur.Group, Name: calico.DefaultConfigName, Config: cur.BGPConfiguration}
		next = cur.DeepCopy()
	}
	off := false
	next.Spec.NodeToNodeMeshEnabled = &off
	next.TypeMeta = metav1.TypeMeta{APIVersion: group + "/" + versionOf(group), Kind: calico.KindBGPConfiguration}
	spec, err := toMap(next.Spec)
	if err != nil {
		return err
	}
	applied := map[string]any{
		"apiVersion": next.APIVersion, "kind": calico.KindBGPConfiguration,
		"metadata": map[string]any{"name": calico.DefaultConfigName}, "spec": spec,
	}
	st := &Step{Phase: PhaseMesh, Summary: "turn the node-to-node mesh off (BGPConfiguration default: nodeToNodeMeshEnabled false): every client now has its zone's reflectors",
		Operation: OpApply, Kind: calico.KindBGPConfiguration, Group: group, Version: versionOf(group), Name: calico.DefaultConfigName, Object: applied}
	return p.judge(ps, st, old, &calico.Object{Kind: calico.KindBGPConfiguration, Group: group, Name: calico.DefaultConfigName, Config: next}, next)
}

// nodeStep gives a node a cluster ID and the reflector label (cid != ""), or takes both away.
func (p *planner) nodeStep(ps *planState, name, cid, phase, summary string) error {
	if k := ps.core[name]; k != nil {
		next := k.DeepCopy()
		next.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: calico.KindNode}
		st := &Step{Phase: phase, Summary: summary, Kind: calico.KindNode, Version: "v1", Name: name}
		if cid != "" {
			if next.Labels == nil {
				next.Labels = map[string]string{}
			}
			if next.Annotations == nil {
				next.Annotations = map[string]string{}
			}
			value := next.Labels[p.label]
			if value == "" {
				value = mutate.AutoFilledValue
			}
			next.Labels[p.label] = value
			next.Annotations[calico.AnnotationClusterID] = cid
			st.Operation = OpApply
			st.Object = map[string]any{"apiVersion": "v1", "kind": calico.KindNode, "metadata": map[string]any{
				"name": name, "labels": map[string]any{p.label: value}, "annotations": map[string]any{calico.AnnotationClusterID: cid}}}
		} else {
			st.Operation = OpRemove
			if _, ok := next.Labels[p.label]; ok {
				delete(next.Labels, p.label)
				st.RemoveLabels = []string{p.label}
			}
			if _, ok := next.Annotations[calico.AnnotationClusterID]; ok {
				delete(next.Annotations, calico.AnnotationClusterID)
				st.RemoveAnnotations = []string{calico.AnnotationClusterID}
			}
			// calicoctl keeps a v3 Node's labels in an annotation: the label may be there.
			if n := calico.NodeFromCore(k); n.CalicoLabelsError == nil {
				if _, ok := n.CalicoLabels[p.label]; ok {
					rest := maps.Clone(n.CalicoLabels)
					delete(rest, p.label)
					if len(rest) == 0 {
						delete(next.Annotations, calico.AnnotationLabels)
						st.RemoveAnnotations = append(st.RemoveAnnotations, calico.AnnotationLabels)
					} else {
						raw, err := json.Marshal(rest)
						if err != nil {
							return err
						}
						next.Annotations[calico.AnnotationLabels] = string(raw)
						st.SetAnnotations = map[string]string{calico.AnnotationLabels: string(raw)}
					}
				}
			}
		}
		return p.judge(ps, st, calico.NodeObject(k), calico.NodeObject(next), next)
	}
	// A projectcalico.org/v3 Node (manifests of an etcd-datastore cluster): calicoctl apply
	// takes the whole node, so the step is the whole node.
	cur := ps.snap.State.Node(name)
	labels := maps.Clone(cur.CalicoLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	delete(labels, p.label)
	if cid != "" {
		labels[p.label] = mutate.AutoFilledValue
	}
	obj := v3Node(cur, labels, cid)
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var v libapiv3.Node
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	st := &Step{Phase: phase, Summary: summary, Operation: OpApply, Kind: calico.KindNode, Group: calico.GroupV3, Version: "v3", Name: name, Object: obj}
	old := &calico.Object{Kind: calico.KindNode, Group: calico.GroupV3, Name: name, Node: cur}
	return p.judge(ps, st, old, &calico.Object{Kind: calico.KindNode, Group: calico.GroupV3, Name: name, Node: calico.NodeFromV3(&v)}, obj)
}

// v3Node is the one rendering of a projectcalico.org/v3 Node (what calicoctl applies, and what
// the API server sends as a step's oldObject): n's addresses and AS number (a number, as
// calicoctl writes it, when it is one) with labels and cluster ID cid.
func v3Node(n *calico.Node, labels map[string]string, cid string) map[string]any {
	bgp := map[string]any{}
	for k, v := range map[string]string{"ipv4Address": n.IPv4Address, "ipv6Address": n.IPv6Address, "routeReflectorClusterID": cid} {
		if v != "" {
			bgp[k] = v
		}
	}
	if n.ASNumber != "" {
		bgp["asNumber"] = n.ASNumber
		if as, err := calico.ParseASN(n.ASNumber); err == nil {
			bgp["asNumber"] = as
		}
	}
	meta := map[string]any{"name": n.Name}
	if labels != nil {
		meta["labels"] = stringsToAny(labels)
	}
	return map[string]any{"apiVersion": calico.GroupV3 + "/v3", "kind": calico.KindNode, "metadata": meta, "spec": map[string]any{"bgp": bgp}}
}

func stringsToAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// judge asks the webhook's code about the step as the API server would send it (mutation,
// then validation, against the state before it) and audits the state after it: a refusal,
// or a deny-level finding the starting state did not have, means no safe plan.
func (p *planner) judge(ps *planState, st *Step, old, next *calico.Object, nextRaw any) error {
	st.Number = len(ps.steps) + 1
	req := &admissionv1.AdmissionRequest{
		UID:       types.UID(fmt.Sprintf("rrguard-plan-step-%d", st.Number)),
		Kind:      metav1.GroupVersionKind{Group: st.Group, Version: st.Version, Kind: st.Kind},
		Resource:  metav1.GroupVersionResource{Group: st.Group, Version: st.Version, Resource: resourceOf(st.Kind)},
		Name:      st.Name,
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: FieldManager},
	}
	raw, err := json.Marshal(nextRaw)
	if err != nil {
		return fmt.Errorf("step %d: %w", st.Number, err)
	}
	req.Object = runtime.RawExtension{Raw: raw}
	if old != nil {
		req.Operation = admissionv1.Update
		oldRaw, err := rawOf(old, st)
		if err != nil {
			return fmt.Errorf("step %d: %w", st.Number, err)
		}
		req.OldObject = runtime.RawExtension{Raw: oldRaw}
	}
	reviewer := &admission.Reviewer{Engine: p.engine}
	resp := reviewer.Review(p.ctx, req, ps.snap)
	if !resp.Allowed {
		msg := "refused"
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return &Infeasible{Reason: fmt.Sprintf("step %d (%s) would be refused by the webhook: %s", st.Number, st.Summary, msg)}
	}
	st.Warnings = resp.Warnings
	var mutated *corev1.Node
	if next.Node != nil && next.CoreNode != nil {
		// What the mutating webhook adds is part of the state after the step.
		var oldCore *corev1.Node
		if old != nil {
			oldCore = old.CoreNode
		}
		mutated = mutate.Apply(next.CoreNode, mutate.ReflectorLabel(oldCore, next.CoreNode, p.label), p.label)
		next = calico.NodeObject(mutated)
	}
	var after *model.Snapshot
	if next.Node != nil {
		after = ps.snap.WithNode(st.Name, next)
	} else {
		after = model.NewSnapshot(ps.snap.State.With(next))
	}
	for _, f := range p.engine.Audit(p.ctx, after) {
		if f.Action == validate.Deny && !ps.denied[findingKey(f)] {
			return &Infeasible{Reason: fmt.Sprintf("step %d (%s) is allowed by the webhook but would leave [%s] %s", st.Number, st.Summary, f.Rule, f.Message)}
		}
	}
	// Safe: the state moves on. A step not taken leaves ps as it was, for another order.
	ps.snap = after
	if mutated != nil {
		ps.core[st.Name] = mutated
	}
	ps.steps = append(ps.steps, st)
	return nil
}

// rawOf renders an object as the API server sends it as oldObject.
func rawOf(o *calico.Object, st *Step) ([]byte, error) {
	switch {
	case o.CoreNode != nil:
		k := o.CoreNode.DeepCopy()
		k.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: calico.KindNode}
		return json.Marshal(k)
	case o.Peer != nil:
		x := o.Peer.DeepCopy()
		x.TypeMeta = metav1.TypeMeta{APIVersion: o.Group + "/" + versionOf(o.Group), Kind: calico.KindBGPPeer}
		return json.Marshal(x)
	case o.Config != nil:
		x := o.Config.DeepCopy()
		x.TypeMeta = metav1.TypeMeta{APIVersion: o.Group + "/" + versionOf(o.Group), Kind: calico.KindBGPConfiguration}
		return json.Marshal(x)
	case o.Node != nil:
		return json.Marshal(v3Node(o.Node, o.Node.CalicoLabels, o.Node.ClusterID))
	}
	return nil, fmt.Errorf("%s %s: nothing to render", st.Kind, st.Name)
}

func versionOf(group string) string {
	if group == calico.GroupCRD {
		return "v1"
	}
	return "v3"
}

func resourceOf(kind string) string {
	switch kind {
	case calico.KindNode:
		return "nodes"
	case calico.KindBGPPeer:
		return "bgppeers"
	}
	return "bgpconfigurations"
}

func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}
