package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Limits bound the admission requests the server holds at once, so that a burst (or someone
// posting large reviews to the port) cannot push the webhook past its memory limit: an
// OOM-killed webhook blocks every BGP change (failurePolicy Fail). Past a limit a request is
// answered HTTP 429 with Retry-After, which the API server's webhook client retries.
type Limits struct {
	// Decisions is how many requests are decided at once; more wait up to QueueWait for
	// their turn (DefaultLimits: 16).
	Decisions int
	// QueueWait is how long a request waits for a decision slot (DefaultLimits: 1s).
	QueueWait time.Duration
	// Memory is how many bytes large requests may hold at once while they are read, decoded
	// and judged (DefaultLimits: 128 MiB). A request's share is estimated from its size and
	// JSON tokens (admission.Cost); reviews of a usual size (a body up to 64 KiB, an
	// estimate up to 1 MiB) are not counted, so that large ones never keep them out.
	Memory int64
}

// DefaultLimits are the server's limits unless configured otherwise: with a decision of a few
// milliseconds, 16 in flight is far more than one or two cores serve, and 128 MiB of large
// requests leave room in a 512 MiB container for the cluster model (about 100 MB at 5,000
// nodes).
func DefaultLimits() Limits {
	return Limits{Decisions: 16, QueueWait: time.Second, Memory: 128 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Decisions <= 0 {
		l.Decisions = d.Decisions
	}
	if l.QueueWait <= 0 {
		l.QueueWait = d.QueueWait
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	return l
}

// Shares of the memory limit at or below these are not counted (see Limits.Memory).
const (
	freeBody = 64 << 10
	freeCost = 1 << 20
)

// retryAfter is the Retry-After of a 429, in seconds.
const retryAfter = "1"

// inFlight enforces Limits for the server's webhook handlers.
type inFlight struct {
	limits    Limits
	decisions chan struct{}
	rec       Recorder

	mu       sync.Mutex
	reserved int64 // bytes of the memory limit held
}

func newInFlight(l Limits, rec Recorder) *inFlight {
	l = l.withDefaults()
	return &inFlight{limits: l, decisions: make(chan struct{}, l.Decisions), rec: rec}
}

// reserve takes n bytes of the memory limit (nothing when n is at most free) and returns
// what to give back, or false when they are not available. A request larger than the whole
// limit is let through alone, when nothing else holds any.
func (f *inFlight) reserve(n, free int64) (int64, bool) {
	if n <= free {
		return 0, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reserved > 0 && f.reserved+n > f.limits.Memory {
		return 0, false
	}
	f.reserved += n
	f.rec.InFlight(len(f.decisions), f.reserved)
	return n, true
}

func (f *inFlight) release(n int64) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	f.reserved -= n
	f.rec.InFlight(len(f.decisions), f.reserved)
	f.mu.Unlock()
}

// enter waits up to QueueWait for a decision slot; false when none came (or the client left).
func (f *inFlight) enter(ctx context.Context) bool {
	select {
	case f.decisions <- struct{}{}:
	default:
		t := time.NewTimer(f.limits.QueueWait)
		defer t.Stop()
		select {
		case f.decisions <- struct{}{}:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	f.report()
	return true
}

func (f *inFlight) leave() {
	<-f.decisions
	f.report()
}

func (f *inFlight) report() {
	f.mu.Lock()
	f.rec.InFlight(len(f.decisions), f.reserved)
	f.mu.Unlock()
}

// Reasons a request is answered 429, for metrics.
const (
	throttledDecisions = "decisions"
	throttledMemory    = "memory"
)

// tooMany answers 429 with Retry-After, saying which limit the request met.
func (f *inFlight) tooMany(w http.ResponseWriter, webhook, limit string, need int64) {
	f.rec.Throttled(webhook, limit)
	msg := fmt.Sprintf("rrguard: %d admission decisions are in flight, the limit, and none ended within %s; retry shortly", f.limits.Decisions, f.limits.QueueWait)
	if limit == throttledMemory {
		msg = fmt.Sprintf("rrguard: this review needs about %d MiB to read and judge, and large reviews already hold most of the %d MiB they may hold at once; retry shortly", (need+1<<20-1)>>20, f.limits.Memory>>20)
	}
	w.Header().Set("Retry-After", retryAfter)
	http.Error(w, msg, http.StatusTooManyRequests)
}
