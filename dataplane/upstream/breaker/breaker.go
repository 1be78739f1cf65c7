// Package breaker is a circuit breaker over a sliding window of bucketed
// counters.
//
// The closed state costs one atomic load per call and a few atomic adds per
// recorded outcome, so it can sit on the request path of every core. State
// transitions are rare and take a small mutex. Counts in a bucket that is being
// recycled at the very moment another goroutine records into it may lose that
// one call: the window is a ratio estimate, not an audit log.
package breaker

import (
	"sync"
	"sync/atomic"
	"time"
)

// State is the breaker's position.
type State int32

const (
	// Closed lets every call through and counts outcomes.
	Closed State = iota
	// Open refuses every call until OpenFor has passed.
	Open
	// HalfOpen lets a few probe calls through; the first outcome decides.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Settings configure a Breaker. Zero values take the defaults noted.
type Settings struct {
	ErrorRatio  float64       // failures/calls at or above which it opens; default 0.5
	MinRequests int           // calls in the window before the ratio counts; default 20
	Window      time.Duration // default 10s
	OpenFor     time.Duration // default 30s
	Probes      int           // concurrent half-open probes; default 3
	Buckets     int           // window resolution; default 10
}

func (s Settings) withDefaults() Settings {
	if s.ErrorRatio <= 0 {
		s.ErrorRatio = 0.5
	}
	if s.MinRequests <= 0 {
		s.MinRequests = 20
	}
	if s.Window <= 0 {
		s.Window = 10 * time.Second
	}
	if s.OpenFor <= 0 {
		s.OpenFor = 30 * time.Second
	}
	if s.Probes <= 0 {
		s.Probes = 3
	}
	if s.Buckets <= 0 {
		s.Buckets = 10
	}
	return s
}

type bucket struct {
	epoch  atomic.Int64 // window-relative index of the slice of time counted here
	total  atomic.Int64
	failed atomic.Int64
}

// Breaker is safe for concurrent use.
type Breaker struct {
	s      Settings
	now    func() time.Time
	width  int64 // bucket width in nanoseconds
	bucket []bucket

	state atomic.Int32
	// until is the end of the open period, or in half-open the moment after
	// which unanswered probe slots are handed out again (a probe whose outcome
	// is never recorded must not keep the breaker half-open forever).
	until  atomic.Int64
	probes atomic.Int32

	mu sync.Mutex // serialises transitions
}

// New returns a closed breaker. now is the clock; nil means time.Now.
func New(s Settings, now func() time.Time) *Breaker {
	s = s.withDefaults()
	if now == nil {
		now = time.Now
	}
	width := int64(s.Window) / int64(s.Buckets)
	if width <= 0 {
		width = 1
	}
	b := &Breaker{s: s, now: now, width: width, bucket: make([]bucket, s.Buckets)}
	b.resetBuckets()
	return b
}

// Settings returns the settings in effect, defaults filled in.
func (b *Breaker) Settings() Settings { return b.s }

// State returns the current state. An open breaker whose time is up reports
// Open until the next Allow moves it to HalfOpen.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Allow reports whether a call may proceed. In half-open it hands out at most
// Probes slots; the caller must Record the outcome of an allowed call.
func (b *Breaker) Allow() bool {
	for {
		switch State(b.state.Load()) {
		case Closed:
			return true
		case Open:
			if b.now().UnixNano() < b.until.Load() {
				return false
			}
			b.enterHalfOpen()
			continue
		}
		n := b.probes.Load()
		if n >= int32(b.s.Probes) {
			if b.now().UnixNano() < b.until.Load() {
				return false
			}
			b.rearmProbes()
			continue
		}
		if b.probes.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Record counts the outcome of an allowed call.
func (b *Breaker) Record(failed bool) {
	switch State(b.state.Load()) {
	case Open:
		// Calls let through before the breaker opened; they say nothing new.
		return
	case HalfOpen:
		if failed {
			b.trip(HalfOpen)
		} else {
			b.close()
		}
		return
	}
	now := b.now().UnixNano()
	epoch := now / b.width
	bk := &b.bucket[epoch%int64(len(b.bucket))]
	if e := bk.epoch.Load(); e != epoch && bk.epoch.CompareAndSwap(e, epoch) {
		bk.total.Store(0)
		bk.failed.Store(0)
	}
	bk.total.Add(1)
	if !failed {
		return
	}
	bk.failed.Add(1)
	total, fails := b.sum(epoch)
	if total >= int64(b.s.MinRequests) && float64(fails) >= b.s.ErrorRatio*float64(total) {
		b.trip(Closed)
	}
}

func (b *Breaker) sum(epoch int64) (total, failed int64) {
	oldest := epoch - int64(len(b.bucket)) + 1
	for i := range b.bucket {
		bk := &b.bucket[i]
		if e := bk.epoch.Load(); e >= oldest && e <= epoch {
			total += bk.total.Load()
			failed += bk.failed.Load()
		}
	}
	return total, failed
}

// trip opens the breaker when it is still in state from.
func (b *Breaker) trip(from State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) != from {
		return
	}
	b.until.Store(b.now().Add(b.s.OpenFor).UnixNano())
	b.state.Store(int32(Open))
}

func (b *Breaker) enterHalfOpen() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) != Open || b.now().UnixNano() < b.until.Load() {
		return
	}
	b.probes.Store(0)
	b.until.Store(b.now().Add(b.s.OpenFor).UnixNano())
	b.state.Store(int32(HalfOpen))
}

func (b *Breaker) rearmProbes() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) != HalfOpen || b.now().UnixNano() < b.until.Load() {
		return
	}
	b.probes.Store(0)
	b.until.Store(b.now().Add(b.s.OpenFor).UnixNano())
}

func (b *Breaker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) != HalfOpen {
		return
	}
	b.resetBuckets()
	b.state.Store(int32(Closed))
}

func (b *Breaker) resetBuckets() {
	for i := range b.bucket {
		b.bucket[i].epoch.Store(-1)
		b.bucket[i].total.Store(0)
		b.bucket[i].failed.Store(0)
	}
}
