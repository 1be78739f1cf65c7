package loadshed

import "time"

// Limiter exposes a route's limiter to the tests, driven as the policy
// drives it.
type Limiter struct{ l *limiter }

// NewLimiter makes the limiter of s, counting time with now.
func NewLimiter(s Settings, now func() time.Time) *Limiter {
	s = s.withDefaults()
	return &Limiter{newLimiter(s.limits(), now, metricsFor(nil).route("test"))}
}

// Acquire asks for a slot as Handle does and names the outcome:
// "admitted", "full", "timeout" or "evicted".
func (t *Limiter) Acquire(paid bool) string {
	out := admitted
	if !t.l.tryAcquire() {
		out = t.l.acquire(paid)
	}
	return [...]string{admitted: "admitted", refusedFull: "full", refusedTimeout: "timeout", refusedEvicted: "evicted"}[out]
}

// Start acquires a slot that must be free and returns its stamp.
func (t *Limiter) Start() int64 {
	if !t.l.tryAcquire() {
		panic("no free slot")
	}
	return t.l.stamp()
}

// Finish gives back a slot taken at start (-1: without measuring it).
func (t *Limiter) Finish(start int64) { t.l.finish(start) }

func (t *Limiter) Limit() int64    { return t.l.limit.Load() }
func (t *Limiter) Inflight() int64 { return t.l.inflight.Load() }

// Queued is the number of requests waiting.
func (t *Limiter) Queued() int {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	return t.l.queued()
}
