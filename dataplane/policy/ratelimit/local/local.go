// Package local is the in-memory rate limiter: GCRA per key, with the keys
// in a sharded map (shardmap) and each key's TAT updated with a
// compare-and-swap, so concurrent requests never wait on one another's lock
// and deciding on a known key allocates nothing.
//
// Memory stays bounded by the keys active within one window: a key whose TAT
// has fallen behind the clock is in the same state as a key never seen, so
// the background sweep drops it without changing any future decision.
package local

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/shardmap"
)

// Options tune a Limiter; the zero value is what the gateway uses.
type Options struct {
	// Now is the clock, time.Now when nil. Tests inject a manual clock.
	Now func() time.Time
	// SweepEvery is how often idle keys are dropped in the background: 0
	// means the window, kept between a second and a minute; a negative
	// value runs no background sweep (call Sweep).
	SweepEvery time.Duration
}

// Limiter limits requests per key to one rate.
type Limiter struct {
	rate  gcra.Rate
	keys  *shardmap.Map[slot]
	now   func() time.Time
	epoch time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// slot is one key's state: its TAT in nanoseconds since the limiter's
// epoch, or dead once swept.
type slot struct{ tat atomic.Int64 }

// dead marks a swept slot: a caller holding it looks the key up again.
const dead = math.MinInt64

// New returns a limiter of rate, sweeping idle keys until Close.
func New(rate gcra.Rate, opts Options) *Limiter {
	l := &Limiter{rate: rate, keys: shardmap.New[slot](), now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.epoch = l.now()
	every := opts.SweepEvery
	if every == 0 {
		every = min(max(time.Duration(rate.Capacity), time.Second), time.Minute)
	}
	if every > 0 {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.sweepLoop(every)
	}
	return l
}

// Rate returns the limiter's rate.
func (l *Limiter) Rate() gcra.Rate { return l.rate }

// clock is the time in nanoseconds since the epoch; with the real clock
// it is monotonic, so wall clock steps do not move limits.
func (l *Limiter) clock() int64 { return int64(l.now().Sub(l.epoch)) }

// Allow decides on one request of key. The key is not kept: it may point
// into a buffer the caller reuses.
func (l *Limiter) Allow(key []byte) gcra.Decision {
	now := l.clock()
	for {
		s := l.keys.Get(key, nil)
		for {
			tat := s.tat.Load()
			if tat == dead {
				break // swept since the lookup: a fresh slot replaces it
			}
			next, d := l.rate.Admit(tat, now)
			if !d.Allowed || s.tat.CompareAndSwap(tat, next) {
				return d
			}
		}
	}
}

// Sweep drops the keys whose allowance is whole again and returns how many.
func (l *Limiter) Sweep() int {
	now := l.clock()
	return l.keys.Sweep(func(s *slot) bool {
		tat := s.tat.Load()
		return tat <= now && s.tat.CompareAndSwap(tat, dead)
	})
}

// Len returns the number of keys held.
func (l *Limiter) Len() int { return l.keys.Len() }

func (l *Limiter) sweepLoop(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Sweep()
		}
	}
}

// Close stops the background sweep. The limiter still answers after it.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		if l.stop != nil {
			close(l.stop)
			<-l.done
		}
	})
	return nil
}
