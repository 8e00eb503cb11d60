package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// metric reads the runtime metric named name.
func metric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// cycles is the number of collections so far.
func cycles() uint64 { return metric("/gc/cycles/total:gc-cycles") }

// percent is the GOGC in effect.
func percent() int { return int(metric("/gc/gogc:percent")) }

// goal is the heap goal in effect.
func goal() uint64 { return metric("/gc/heap/goal:bytes") }

// limit is the memory limit in effect.
func limit() int64 { return int64(metric("/gc/gomemlimit:bytes")) }

var sink []byte

// churn allocates total bytes of garbage in 64 KiB pieces and returns the collections it took.
func churn(total int) uint64 {
	before := cycles()
	for range total / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	return cycles() - before
}

// TestFewerCollections: over a small live heap, GOGC is raised so that the heap grows to the
// floor between collections: 256 MiB of garbage takes a handful of collections with a 64
// MiB floor, where GOGC=100 would take one per 4 MiB. Stopping puts GOGC back.
func TestFewerCollections(t *testing.T) {
	stop := Set(64 << 20)
	runtime.GC()
	if p := percent(); p < 1000 {
		t.Errorf("GOGC is %d over a small live heap with a 64 MiB floor, want about 1500", p)
	}
	if c := churn(256 << 20); c > 8 {
		t.Errorf("256 MiB of garbage took %d collections with a 64 MiB floor", c)
	}
	stop()
	if p := percent(); p != 100 {
		t.Errorf("GOGC after stop is %d, want 100", p)
	}
	stop() // a second stop changes nothing
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := percent(); p != 100 {
		t.Errorf("GOGC after a second stop and a collection is %d, want 100", p)
	}
}

// TestStalePercentage: a percentage set for a smaller live heap, as when the setting after a
// collection comes late, does not put the heap goal far past the floor: the memory limit, a
// quarter over it, holds it (without it the goal is some 40 GiB), and stopping takes the
// limit away.
func TestStalePercentage(t *testing.T) {
	stop := Set(64 << 20)
	runtime.GC()
	time.Sleep(20 * time.Millisecond) // the setting after that collection is made
	if l := limit(); l != 80<<20 {
		t.Errorf("memory limit %d under a 64 MiB floor, want 80 MiB", l)
	}
	debug.SetGCPercent(1 << 20) // what a live heap of 6 KiB would get
	if g := goal(); g > 80<<20 {
		t.Errorf("heap goal %d MiB under a 64 MiB floor with a stale GOGC", g>>20)
	}
	stop()
	if l := limit(); l != math.MaxInt64 {
		t.Errorf("memory limit after stop is %d, want none", l)
	}
	if g := goal(); g > 64<<20 {
		t.Errorf("heap goal %d MiB after stop", g>>20)
	}
}

var kept [][]byte

// TestLargeLiveHeap: with more than half the floor live, GOGC is the usual one after a
// collection: the floor adds nothing to a program that already holds much.
func TestLargeLiveHeap(t *testing.T) {
	stop := Set(64 << 20)
	defer stop()
	for range 40 {
		kept = append(kept, make([]byte, 1<<20))
	}
	defer func() { kept = nil }()
	deadline := time.Now().Add(5 * time.Second)
	for percent() != 100 || limit() != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d and the memory limit %d with 40 MiB live and a 64 MiB floor, want 100 and none", percent(), limit())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// And raised again once the heap is small.
	kept = nil
	for percent() == 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed 100 with a small live heap and a 64 MiB floor")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGOGCFromTheEnvironment: a GOGC or GOMEMLIMIT the user set leaves the floor off:
// collections over a small live heap raise neither GOGC nor the limit.
func TestGOGCFromTheEnvironment(t *testing.T) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, map[string]string{"GOGC": "100", "GOMEMLIMIT": "off"}[env])
			stop := Set(64 << 20)
			defer stop()
			for range 5 {
				runtime.GC()
				time.Sleep(20 * time.Millisecond)
				if p, l := percent(), limit(); p != 100 || l != math.MaxInt64 {
					t.Fatalf("GOGC is %d and the memory limit %d with %s in the environment", p, l, env)
				}
			}
		})
	}
}

// TestOneAtATime: a floor set while another is leaves GOGC to the first, and the GOGC from
// before both is back once both are stopped, in either order; a floor too small to matter
// sets nothing.
func TestOneAtATime(t *testing.T) {
	stop := Set(64 << 20)
	raised := percent()
	inner := Set(256 << 20)
	if p := percent(); p != raised {
		t.Errorf("GOGC with a second floor set is %d, want the first floor's %d", p, raised)
	}
	stop()
	inner()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := percent(); p != 100 {
		t.Errorf("GOGC after both stops (the first floor's first) is %d, want 100", p)
	}
	small := Set(1 << 20)
	if p := percent(); p != 100 {
		t.Errorf("GOGC with a 1 MiB floor is %d, want 100", p)
	}
	small()
	again := Set(64 << 20)
	if p := percent(); p <= 100 {
		t.Errorf("GOGC is %d with a floor set after the others stopped", p)
	}
	again()
}
