package cluster

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Store keeps the decoded Calico objects the informers deliver and hands out analysed
// snapshots of them. Events that change nothing Calico cares about (kubelet heartbeats, for
// example) do not invalidate the current snapshot, so the analysis is rebuilt only when the
// BGP picture really changed.
type Store struct {
	mu      sync.Mutex
	objects map[string]*calico.Object
	version uint64
	snap    *model.Snapshot
	snapAt  uint64
	// since are the objects changed since snap that can be laid over it (layable: core
	// Nodes, BGPPeers, BGPConfigurations; nil: something else changed, rebuild); depth
	// counts the changes laid over snap's last full build.
	since map[sinceKey]bool
	depth int
	// reshaped counts the Nodes added or removed since snap's last full build: a flattened
	// snapshot keeps a removed node's place in the topology and an added one at its end.
	reshaped int
	// rebuild is the full build running in the background (nil: none); build makes it
	// (model.NewSnapshot when nil; tests wait in it).
	rebuild *rebuild
	build   func([]*calico.Object) *model.Snapshot
	// rejected holds the objects in the cluster that could not be decoded, by key.
	rejected map[string]error
	// OnChange, when set before events flow, is called (without the lock) after each change
	// to the BGP picture.
	OnChange func()
	// pending are the changes admission allowed that the informers have not delivered yet
	// (pending.go).
	pending pending
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{objects: map[string]*calico.Object{}, rejected: map[string]error{}, version: 1}
}

// key identifies an object. When Calico serves an object in both API groups, the state keeps
// the projectcalico.org one (it sorts last).
func key(group, kind, name string) string { return group + "/" + kind + "/" + name }

// UpsertNode records a core/v1 Node. It reports whether the BGP picture changed.
func (s *Store) UpsertNode(n *corev1.Node) bool {
	changed, _ := s.upsert(key("", calico.KindNode, n.Name), &calico.Object{Kind: calico.KindNode, Name: n.Name, CoreNode: n, Node: calico.NodeFromCore(n)}, nil)
	if changed {
		s.changed()
	}
	return changed
}

// Upsert records a Calico object from an informer event. It reports whether the BGP picture
// changed.
func (s *Store) Upsert(u *unstructured.Unstructured) (bool, error) {
	o, err := calico.Decode(u)
	changed, err := s.upsert(key(u.GroupVersionKind().Group, u.GetKind(), u.GetName()), o, err)
	if changed {
		s.changed()
	}
	return changed, err
}

func (s *Store) upsert(k string, o *calico.Object, err error) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if errors.Is(err, calico.ErrUnknownKind) {
			return false, nil
		}
		s.rejected[k] = err
		return false, err
	}
	delete(s.rejected, k)
	s.delivered(o.Kind, o.Name, o)
	if prev, ok := s.objects[k]; ok && calico.SameForBGP(prev, o) {
		return false, nil
	}
	_, existed := s.objects[k]
	s.objects[k] = o
	s.version++
	s.touched(o.Kind, o.Group, o.Name, !existed)
	return true, nil
}

// maxDepth is how many Node changes a snapshot takes incrementally before it is flattened:
// each is an overlay on the state that lookups walk. Flattening copies the node map (a
// millisecond at 5,000 nodes) and keeps the analysis, which the changes derived already. Only
// when more than maxDepth Nodes were added or removed since the last full build is the
// snapshot built afresh, in the background: a full build of a large cluster costs as much as
// thousands of decisions, which a request waiting for it would add to its own time, and it
// competes with requests for the CPU (every 128 changes, it was half the webhook's median
// latency through the API server at concurrency 8: hack/loadbench). Until the build is done,
// snapshots take up to hardDepth changes; past it a request waits.
const (
	maxDepth  = 128
	hardDepth = 8 * maxDepth
)

// A rebuild is a full build of the objects as they were when it started; since are the
// objects changed after it started, laid over it when it is done (reshaped Nodes added or
// removed), other that something else changed (the build is then of no use).
type rebuild struct {
	since    map[sinceKey]bool
	reshaped int
	other    bool
}

// sinceKey names a changed object to lay over a snapshot (Calico's two API groups are views
// of one object: the kind and name say which).
type sinceKey struct{ kind, name string }

// layable reports whether a change to an object of kind in group can be laid over a snapshot
// (model.Snapshot.After derives the analysis: a core Node, a BGPPeer, a BGPConfiguration)
// rather than built afresh: a BGPPeer's spec changed is a millisecond or two at 1,000 rack
// BGPPeers, a full build of that cluster 70 ms, which the next request would wait for
// holding the store's lock.
func layable(kind, group string) bool {
	switch kind {
	case calico.KindNode:
		return group == calico.GroupCore
	case calico.KindBGPPeer, calico.KindBGPConfiguration:
		return true
	}
	return false
}

// touched notes a changed object for the next Snapshot: a layable one can be laid over the
// current snapshot, anything else needs a rebuild. reshaped: the object was added or
// removed. Called with the lock held.
func (s *Store) touched(kind, group, name string, reshaped bool) {
	nodeReshaped := reshaped && kind == calico.KindNode
	if r := s.rebuild; r != nil {
		if layable(kind, group) {
			r.since[sinceKey{kind, name}] = true
			if nodeReshaped {
				r.reshaped++
			}
		} else {
			r.other = true
		}
	}
	if !layable(kind, group) || s.snap == nil {
		s.since = nil
		s.snap = nil
		return
	}
	if s.since == nil {
		s.since = map[sinceKey]bool{}
	}
	s.since[sinceKey{kind, name}] = true
	if nodeReshaped {
		s.reshaped++
	}
}

// layOver returns snap with the objects of since as the store holds them now, in order of
// kind and name (s.mu held).
func (s *Store) layOver(snap *model.Snapshot, since map[sinceKey]bool) *model.Snapshot {
	keys := slices.SortedFunc(maps.Keys(since), func(x, y sinceKey) int {
		return cmp.Or(cmp.Compare(x.kind, y.kind), cmp.Compare(x.name, y.name))
	})
	for _, k := range keys {
		if k.kind == calico.KindNode {
			snap = snap.WithNode(k.name, s.objects[key(calico.GroupCore, calico.KindNode, k.name)])
			continue
		}
		// The object the state keeps: the projectcalico.org one where both groups hold it.
		now := s.objects[key(calico.GroupV3, k.kind, k.name)]
		if now == nil {
			now = s.objects[key(calico.GroupCRD, k.kind, k.name)]
		}
		ch := model.Change{Old: snap.State.Object(k.kind, k.name), Object: now}
		switch {
		case ch.Old == nil && now == nil:
			continue
		case now == nil:
			ch.Operation = model.Delete
		case ch.Old == nil:
			ch.Operation = model.Create
		default:
			ch.Operation = model.Update
		}
		snap = snap.After(ch)
	}
	return snap
}

func (s *Store) changed() {
	if s.OnChange != nil {
		s.OnChange()
	}
}

// Delete forgets an object.
func (s *Store) Delete(group, kind, name string) {
	s.mu.Lock()
	k := key(group, kind, name)
	delete(s.rejected, k)
	_, ok := s.objects[k]
	if ok {
		delete(s.objects, k)
		s.version++
		s.touched(kind, group, name, true)
	}
	s.delivered(kind, name, nil)
	s.mu.Unlock()
	if ok {
		s.changed()
	}
}

// Snapshot returns the analysed current state, rebuilding it only if something changed.
func (s *Store) Snapshot() *model.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap != nil && s.snapAt == s.version {
		return s.snap
	}
	if s.snap != nil && len(s.since) > 0 && s.depth+len(s.since) <= hardDepth {
		s.snap = s.layOver(s.snap, s.since)
		s.depth += len(s.since)
		s.since = nil
		s.snapAt = s.version
		if s.depth > maxDepth && s.reshaped <= maxDepth {
			if flat, ok := s.snap.Flat(); ok {
				s.snap, s.depth = flat, 0
			}
		}
		if s.depth > maxDepth && s.rebuild == nil {
			s.startRebuild()
		}
		return s.snap
	}
	s.rebuild = nil // a build running now is of the objects before: dropped when done
	s.snap = s.buildOf(s.sortedObjects())
	s.snapAt = s.version
	s.since, s.depth, s.reshaped = nil, 0, 0
	return s.snap
}

func (s *Store) buildOf(objs []*calico.Object) *model.Snapshot {
	if s.build != nil {
		return s.build(objs)
	}
	return model.NewSnapshot(calico.NewState(objs))
}

// startRebuild builds the current objects afresh in the background; when done, the Nodes
// changed in the meantime are laid over the build, which becomes the snapshot (unless
// something other than a Node changed, or a snapshot was built in the meantime). Called with
// s.mu held.
func (s *Store) startRebuild() {
	r := &rebuild{since: map[sinceKey]bool{}}
	s.rebuild = r
	objs := s.sortedObjects()
	go func() {
		built := s.buildOf(objs)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.rebuild != r {
			return
		}
		s.rebuild = nil
		if r.other || s.snap == nil {
			return
		}
		s.snap, s.snapAt, s.depth, s.reshaped = s.layOver(built, r.since), s.version, len(r.since), r.reshaped
		s.since = nil
	}()
}

// Unreadable returns how many objects in the cluster could not be decoded (they are left out
// of the model; the server logs each and exports the count).
func (s *Store) Unreadable() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rejected)
}

// sortedObjects returns the objects in key order, what a full rebuild analyses (s.mu held).
func (s *Store) sortedObjects() []*calico.Object {
	keys := slices.Sorted(maps.Keys(s.objects))
	objs := make([]*calico.Object, len(keys))
	for i, k := range keys {
		objs[i] = s.objects[k]
	}
	return objs
}
