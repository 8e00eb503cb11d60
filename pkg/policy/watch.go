package policy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Reload is the outcome of one attempt to load changed policy files.
type Reload struct {
	// Set is the set in use after the attempt: the new one, or on error the last good one.
	Set *Set
	// Err is why the new files were not taken (a *LoadError for policy problems).
	Err  error
	Took time.Duration
}

// Watcher keeps the policy set of some directories current: it reloads when a file changes
// (fsnotify, so a ConfigMap update, which swaps the ..data link, is seen at once; and a
// periodic re-read, for file systems that do not notify). A set that fails to load never
// replaces the one in use.
type Watcher struct {
	opts     Options
	current  atomic.Pointer[Set]
	onReload func(Reload)

	mu        sync.Mutex // one reload at a time
	attempted string     // digest of the files last tried, good or bad

	// Poll is how often the directories are re-read without a notification (default 10s);
	// Debounce is how long to wait for a burst of notifications to settle (default 50ms).
	Poll, Debounce time.Duration
}

// NewWatcher loads the policy set; it fails if that set does not load (there is no last good
// one to keep). onReload, if not nil, is called after every later attempt.
func NewWatcher(opts Options, onReload func(Reload)) (*Watcher, error) {
	src, err := read(opts)
	if err != nil {
		return nil, err
	}
	set, err := compile(src, opts)
	if err != nil {
		return nil, err
	}
	w := &Watcher{opts: opts, onReload: onReload, attempted: src.digest, Poll: 10 * time.Second, Debounce: 50 * time.Millisecond}
	w.current.Store(set)
	return w, nil
}

// Current returns the set in use.
func (w *Watcher) Current() *Set { return w.current.Load() }

// Reload reads the directories and, if any file changed since the last attempt, compiles
// them and puts the new set in use. It reports whether it tried; on error the old set stays.
func (w *Watcher) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	src, err := read(w.opts)
	tried := "unreadable: " + fmt.Sprint(err) // a directory that stays unreadable is reported once
	if err == nil {
		tried = src.digest
	}
	if tried == w.attempted {
		return false, nil
	}
	w.attempted = tried
	var set *Set
	if err == nil {
		set, err = compile(src, w.opts)
	}
	if err == nil {
		w.current.Store(set)
	}
	if w.onReload != nil {
		w.onReload(Reload{Set: w.Current(), Err: err, Took: time.Since(start)})
	}
	return true, err
}

// Start watches the directories until ctx ends (it fits a controller-runtime manager as a
// Runnable).
func (w *Watcher) Start(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	for _, dir := range w.opts.Dirs {
		// A failure to watch leaves the periodic re-read.
		_ = fw.Add(dir)
	}
	poll := time.NewTicker(w.Poll)
	defer poll.Stop()
	settle := time.NewTimer(0)
	<-settle.C
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-fw.Events:
			settle.Reset(w.Debounce)
		case <-fw.Errors:
			settle.Reset(w.Debounce)
		case <-settle.C:
			_, _ = w.Reload()
		case <-poll.C:
			_, _ = w.Reload()
		}
	}
}

// NeedLeaderElection is false: every replica serves admission with its own policies.
func (w *Watcher) NeedLeaderElection() bool { return false }
