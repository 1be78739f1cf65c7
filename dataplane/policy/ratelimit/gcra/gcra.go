// Package gcra is the arithmetic of the generic cell rate algorithm (GCRA),
// the rate limiting algorithm every rate-limit store of Tollgate shares: the
// in-memory limiter, the Redis script and the batched Redis views.
//
// GCRA keeps one number per key, the theoretical arrival time (TAT): the
// instant at which the key's allowance would be whole again if nothing more
// came. A request at now is admitted when, counted in, the key would still
// be no more than one window (the capacity, limit × emission interval) ahead
// of now. So a limit of 100 per minute admits 100 requests at once, then one
// every 600ms: unlike a fixed window there is no second burst at a window
// edge, and unlike a sliding log it costs one timestamp per key.
//
// All times are integers in one unit chosen by the caller (nanoseconds in
// memory, microseconds in Redis); Rate keeps the emission interval a whole
// number of microseconds so both units give the same answers.
package gcra

import "time"

// Rate is a limit of Limit requests per window, as GCRA sees it.
type Rate struct {
	Limit int64
	// Interval is the emission interval, window / limit, in nanoseconds,
	// rounded down to a whole microsecond.
	Interval int64
	// Capacity is Limit × Interval: how far ahead of now the TAT may run.
	Capacity int64
}

// NewRate returns the rate of limit requests per window. The emission
// interval is rounded down to a whole microsecond, and is at least one: a
// key is never admitted more than a million requests per second after its
// burst of limit (a limit that high is meant as no limit at all).
func NewRate(limit int64, window time.Duration) Rate {
	interval := int64(window) / limit
	interval -= interval % int64(time.Microsecond)
	if interval < int64(time.Microsecond) {
		interval = int64(time.Microsecond)
	}
	return Rate{Limit: limit, Interval: interval, Capacity: limit * interval}
}

// Decision is the outcome of one request and what the rate limit headers
// say about it.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests would be admitted right now.
	Remaining int64
	// Reset is, for an admitted request, the time until the key's whole
	// allowance is back; for a refused one, the time until a request would
	// be admitted (then equal to RetryAfter).
	Reset time.Duration
	// RetryAfter is the time until a request would be admitted (0 when
	// admitted).
	RetryAfter time.Duration
}

// Admit decides on a request at now for a key whose TAT is tat, returning
// the decision and the TAT to store (tat unchanged when refused).
func (r Rate) Admit(tat, now int64) (int64, Decision) {
	if tat < now {
		tat = now
	}
	backlog := tat - now + r.Interval
	d := r.Decide(backlog)
	if !d.Allowed {
		return tat, d
	}
	return now + backlog, d
}

// Decide is the decision for a request that would leave the key's TAT
// backlog ahead of now (its TAT before it, at least now, plus one interval).
func (r Rate) Decide(backlog int64) Decision {
	if backlog > r.Capacity {
		wait := time.Duration(backlog - r.Capacity)
		return Decision{Reset: wait, RetryAfter: wait}
	}
	return Decision{Allowed: true, Remaining: (r.Capacity - backlog) / r.Interval, Reset: time.Duration(backlog)}
}

// Free is how many requests a key whose TAT is tat would admit at now.
func (r Rate) Free(tat, now int64) int64 {
	if tat < now {
		tat = now
	}
	if f := (now + r.Capacity - tat) / r.Interval; f > 0 {
		return f
	}
	return 0
}

// Seconds rounds d up to whole seconds, as the rate limit headers and
// Retry-After carry it.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
