package cluster

import (
	"encoding/json"
	"reflect"
	"sync"
	"time"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
)

// Concurrent changes are judged together. Admission allows a change before the API server
// stores it, and the informers deliver it a moment later (milliseconds to seconds under
// load): two changes judged in that window against the same snapshot could each pass and
// together cut a node off (a burst of BGPPeer creates, pairs of peer deletions). So the store
// keeps the changes it allowed that the informers have not delivered yet, and every decision
// is taken against the snapshot with those laid over it, as if decisions were taken one at a
// time (Store.Judge).
//
// A pending change is dropped when the store holds its result (the object as allowed, or its
// absence after a delete) or after PendingTTL, for a write that never landed (another webhook
// refused it, a conflict): until then the overlay may judge later changes against a state
// that does not exist, erring on the side that change made. Replicas do not see each other's
// pending changes; the elected replica's audit reports what they let through together.

// PendingTTL is how long an allowed change waits for the informers before it is forgotten.
const PendingTTL = 10 * time.Second

type pendingChange struct {
	ch      model.Change
	key     string // Kind/name: both API groups of Calico are views of the same object
	expires time.Time
}

// pending is the store's overlay of allowed changes.
type pending struct {
	// judging serialises decisions (see Store.Judge); mu guards the fields below.
	judging sync.Mutex
	mu      sync.Mutex
	changes []pendingChange
	gen     uint64 // bumped when changes change
	// overlay is the snapshot with changes laid over base, made for generation at.
	overlay *model.Snapshot
	base    *model.Snapshot
	at      uint64
}

func pendingKey(kind, name string) string { return kind + "/" + name }

// Judge runs decide against the current snapshot with the changes allowed but not yet
// delivered laid over it; decide returns the change it allowed (nil when it refused, or for
// a dry run, or a request rrguard does not judge), which is then laid over the snapshots of
// the decisions that follow until the informers deliver it, and the snapshot after that
// change if it made one (Judge's from then on; nil: Judge makes it).
//
// Decisions run concurrently and are committed one at a time, each as if taken alone in
// some order: a decision that keeps nothing (a refusal, or a change that leaves the BGP model
// as it is — a label no selector reads — which cannot combine with another into anything
// that one alone would not do) is the decision it would have been had it gone first, and is
// done. One that keeps a change is committed under the lock if the snapshot it was taken
// against is still the current one; otherwise it is taken again, under the lock, against
// the current one. So a burst of changes is judged together, while the label changes that
// make most of a cluster's writes are never queued behind one another.
func (s *Store) Judge(now time.Time, decide func(*model.Snapshot) (*model.Change, *model.Snapshot)) {
	p := &s.pending
	snap := s.judgingSnapshot(now)
	ch, after := s.kept(snap, decide)
	if ch == nil {
		return
	}
	p.judging.Lock()
	defer p.judging.Unlock()
	if cur := s.judgingSnapshot(now); cur != snap {
		after.ReleaseOver(snap)
		snap = cur
		if ch, after = s.kept(snap, decide); ch == nil {
			return
		}
	}
	target := ch.Target()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changes = append(p.changes, pendingChange{ch: *ch, key: pendingKey(target.Kind, target.Name), expires: now.Add(PendingTTL)})
	p.gen++
	// The next decision judges against exactly this snapshot, unless the cluster changes.
	if p.overlay == snap && p.at == p.gen-1 {
		p.overlay, p.at = after, p.gen
	}
}

// kept runs decide against snap and returns the change it allowed with the snapshot after
// it, if the change is to be laid over later decisions' snapshots (see Judge); else nil.
func (s *Store) kept(snap *model.Snapshot, decide func(*model.Snapshot) (*model.Change, *model.Snapshot)) (*model.Change, *model.Snapshot) {
	ch, after := decide(snap)
	if ch == nil || ch.Target() == nil {
		after.ReleaseOver(snap)
		return nil, nil
	}
	// decide may have analysed the change within a smaller budget than snap's (admission's):
	// where that decided every family, the result is the same as within snap's, and the
	// snapshot takes snap's budget for what is derived from it; else it is made again.
	if after != nil && after.Analysis.Budget() != snap.Analysis.Budget() {
		if len(after.Analysis.Undecided) == 0 {
			after = after.Within(snap.Analysis.Budget())
		} else {
			after.ReleaseOver(snap)
			after = nil
		}
	}
	if after == nil {
		after = snap.After(*ch)
	}
	if after.Analysis.SameModel(snap.Analysis) && after.State.Mesh() == snap.State.Mesh() {
		after.ReleaseOver(snap)
		return nil, nil
	}
	return ch, after
}

// Pending returns how many allowed changes the informers have not delivered yet.
func (s *Store) Pending() int {
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	return len(s.pending.changes)
}

// judgingSnapshot is the current snapshot with the pending changes that have not expired
// laid over it (made once per snapshot and set of pending changes).
func (s *Store) judgingSnapshot(now time.Time) *model.Snapshot {
	base := s.Snapshot()
	p := &s.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.changes[:0]
	for _, c := range p.changes {
		if now.Before(c.expires) {
			live = append(live, c)
		}
	}
	if len(live) != len(p.changes) {
		clear(p.changes[len(live):])
		p.changes = live
		p.gen++
	}
	if p.overlay != nil && p.base == base && p.at == p.gen {
		return p.overlay
	}
	snap := base
	for _, c := range p.changes {
		snap = snap.After(c.ch)
	}
	p.overlay, p.base, p.at = snap, base, p.gen
	return snap
}

// delivered drops the pending changes of kind/name whose result the store now holds: o is
// the object stored (nil: none). Called with s.mu held.
func (s *Store) delivered(kind, name string, o *calico.Object) {
	p := &s.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	k := pendingKey(kind, name)
	kept := p.changes[:0]
	for _, c := range p.changes {
		if c.key == k && landed(c.ch, o) {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) != len(p.changes) {
		clear(p.changes[len(kept):])
		p.changes = kept
		p.gen++
	}
}

// landed reports whether the stored object (nil: none) is the result of change ch: the
// object as allowed, or, in the group it was judged in, with fields the API server filled
// in after admission. Calico's API server stores a projectcalico.org/v3 object as
// crd.projectcalico.org/v1, whose CRD defaults fields (a BGPConfiguration's
// serviceLoadBalancerAggregation), and libcalico-go defaults an IPPool's (blockSize,
// vxlanMode, allowedUses, ...): there the stored object never equals the admitted one, and
// the change would stay laid over newer states until it expires.
func landed(ch model.Change, stored *calico.Object) bool {
	if ch.Object == nil || ch.Operation == model.Delete {
		return stored == nil
	}
	if stored == nil {
		return false
	}
	if calico.SameForBGP(stored, ch.Object) {
		return true
	}
	if stored.Group != ch.Object.Group {
		return false
	}
	want, have := specOf(ch.Object), specOf(stored)
	return want != nil && have != nil && covers(have, want)
}

// specOf is the spec of a Calico object other than a Node as JSON values (nil for a Node or
// a BlockAffinity).
func specOf(o *calico.Object) map[string]any {
	var spec any
	switch {
	case o.Peer != nil:
		spec = o.Peer.Spec
	case o.Config != nil:
		spec = o.Config.Spec
	case o.Filter != nil:
		spec = o.Filter.Spec
	case o.Pool != nil:
		spec = o.Pool.Spec
	default:
		return nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil
	}
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// covers reports whether have holds every field of want with the same value; it may hold
// more (defaults).
func covers(have, want any) bool {
	w, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(have, want)
	}
	h, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range w {
		if hv, ok := h[k]; !ok || !covers(hv, v) {
			return false
		}
	}
	return true
}
