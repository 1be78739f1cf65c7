package loadshed

import "sync/atomic"

// aimd is the adaptive limit's controller: additive increase,
// multiplicative decrease, on the latency of the requests that completed in
// each adjust_interval.
//
// Only one thing of the latencies matters, whether their 90th percentile is
// above target_latency, and it is above exactly when more than a tenth of
// them are. So a window is two counters (requests, slow requests) and no
// sample is kept. Each finished request adds to them; the first one to
// finish after the window's end closes it (a compare-and-swap picks one)
// and decides:
//
//   - p90 above target: limit × 0.9, not below min_concurrent;
//   - p90 at or below target, and the route was busy (at some point at least
//     half its limit in flight): limit + 1, up to max_concurrent. A route
//     using a fraction of its limit says nothing about what a higher one
//     would do, so the limit does not creep up while idle;
//   - a window without requests changes nothing.
type aimd struct {
	target   int64 // nanoseconds
	interval int64 // nanoseconds
	min, max int64

	windowEnd atomic.Int64 // nanoseconds since the limiter's epoch
	samples   atomic.Int64
	slow      atomic.Int64
	busy      atomic.Bool
}

func newAIMD(lim limits) *aimd {
	a := &aimd{target: int64(lim.target), interval: int64(lim.interval), min: lim.min, max: lim.max}
	a.windowEnd.Store(a.interval)
	return a
}

// Decrease is the factor a limit is multiplied by when latency is too
// high, as tenths.
const decreaseTenths = 9

// observe records a request that took latency and ended at now (both in
// nanoseconds, now since the epoch), with inflight requests in flight
// (itself included) under limit. When it closes a window that calls for a
// new limit, it returns that limit and true.
func (a *aimd) observe(latency, now, inflight, limit int64) (int64, bool) {
	a.samples.Add(1)
	if latency > a.target {
		a.slow.Add(1)
	}
	if inflight*2 >= limit && !a.busy.Load() {
		a.busy.Store(true)
	}
	end := a.windowEnd.Load()
	if now < end || !a.windowEnd.CompareAndSwap(end, now+a.interval) {
		return 0, false
	}
	n, slow, busy := a.samples.Swap(0), a.slow.Swap(0), a.busy.Swap(false)
	switch {
	case n == 0:
		return 0, false
	case slow*10 > n: // more than a tenth slow: p90 above target
		next := max(a.min, limit*decreaseTenths/10)
		return next, next != limit
	case busy && limit < a.max:
		return limit + 1, true
	}
	return 0, false
}
