// Package gcfloor keeps the garbage collector from running while the heap is small. A batch
// job that allocates much and keeps little at first, such as parsing 100,000 manifest
// documents, otherwise collects every few megabytes until what it keeps has grown: most of
// its collections come when they free the least.
package gcfloor

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// minHeap is the runtime's smallest heap goal at GOGC=100 (4 MB), the live heap it assumes
// before its first collection.
const minHeap = 4 << 20

// active is set while a floor is: floors do not nest.
var active atomic.Bool

// Set makes the heap goal at least floor bytes until the returned stop is called: after each
// collection it sets GOGC to the percentage that puts the next goal at floor, given the heap
// the collection left live, never below the percentage in effect (100 unless GOGC says
// otherwise). Once the live heap is over half the floor, the goal is the usual one: the
// floor never adds more than floor bytes to what the program would use anyway.
//
// While the floor raises GOGC it also sets the memory limit a quarter over the floor, so that
// a percentage set for a smaller live heap cannot put the goal far past the floor when the
// live heap grows before the next setting (a collection the setting misses, or one that comes
// first on a busy machine).
//
// It does nothing when GOGC or GOMEMLIMIT is set in the environment (the user chose), when
// collection is off, when floor is no more than the runtime's own smallest goal, or while
// another floor is set.
func Set(floor uint64) (stop func()) {
	nothing := func() {}
	if floor <= 2*minHeap || floor > math.MaxInt64/2 {
		return nothing
	}
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, set := os.LookupEnv(env); set {
			return nothing
		}
	}
	if !active.CompareAndSwap(false, true) {
		return nothing
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base <= 0 {
		active.Store(false)
		return nothing
	}
	t := &tuner{floor: floor, base: base, baseLimit: debug.SetMemoryLimit(-1), sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune(minHeap)
	t.arm()
	return t.stop
}

type tuner struct {
	floor     uint64
	base      int   // GOGC before
	baseLimit int64 // the memory limit before
	sample    []metrics.Sample

	mu      sync.Mutex
	stopped bool
}

// sentinel is allocated for each collection to find its end: its cleanup runs once a
// collection found it unreachable. It is too large for the tiny allocator, which would keep
// it alive with its neighbours.
type sentinel struct{ _ [32]byte }

func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		metrics.Read(t.sample)
		t.tune(max(t.sample[0].Value.Uint64(), minHeap))
		t.arm()
	}, t)
}

// tune sets the percentage and the limit for a live heap of live bytes; t.mu held or not yet
// shared.
func (t *tuner) tune(live uint64) {
	if live >= t.floor/2 {
		debug.SetGCPercent(t.base)
		debug.SetMemoryLimit(t.baseLimit)
		return
	}
	debug.SetMemoryLimit(min(int64(t.floor+t.floor/4), t.baseLimit))
	debug.SetGCPercent(max(t.base, int((t.floor-live)*100/live)))
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.base)
		debug.SetMemoryLimit(t.baseLimit)
		active.Store(false)
	}
}
