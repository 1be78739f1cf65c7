package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// flights are the fetches of a route's resources in progress, so that
// concurrent misses of one key make one upstream call: the first request
// leads and goes upstream; the others wait for its answer to be stored and
// answer from the store.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
	// waiting counts the requests waiting for a fetch (for tests).
	waiting atomic.Int64
}

// flight is one fetch; done is closed once its answer is stored, or known
// not to be.
type flight struct {
	done chan struct{}
}

// join returns the fetch of key in progress; without one, when lead is
// set, it starts one that the caller leads (leader true), else it returns
// nil.
func (fs *flights) join(key []byte, lead bool) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[string(key)]; f != nil || !lead {
		return f, false
	}
	if fs.m == nil {
		fs.m = map[string]*flight{}
	}
	f = &flight{done: make(chan struct{})}
	fs.m[string(key)] = f
	return f, true
}

// land ends the leader's fetch of key, waking those waiting for it.
func (fs *flights) land(key string, f *flight) {
	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	close(f.done)
}

// wait waits at most timeout for f to land and reports whether it did.
func (fs *flights) wait(f *flight, timeout time.Duration) bool {
	fs.waiting.Add(1)
	defer fs.waiting.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
		return false
	}
}
