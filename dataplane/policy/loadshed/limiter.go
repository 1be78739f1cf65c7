package loadshed

import (
	"sync"
	"sync/atomic"
	"time"
)

// limits are what shapes a limiter.
type limits struct {
	max          int64 // the limit, or its ceiling in adaptive mode
	queueSize    int
	queueTimeout time.Duration

	adaptive bool
	min      int64         // floor of the adaptive limit
	target   time.Duration // p90 latency aimed for
	interval time.Duration // between adjustments
}

// outcome is the answer to a request for a slot.
type outcome uint8

const (
	admitted outcome = iota
	refusedFull
	refusedTimeout
	refusedEvicted
)

// limiter hands out the concurrency slots of one route.
//
// The fast path is one compare-and-swap on inflight: while nobody waits
// and a slot is free, a request takes it without a lock. Everything about
// waiting (the queues, priorities, eviction, hand-off) happens under mu,
// which requests only take when the route is full.
//
// waiting is what keeps the two paths from losing a wake-up: a request
// about to queue counts itself in waiting before its last try for a slot,
// and a release looks at waiting after giving its slot back. With Go's
// sequentially consistent atomics, either the release sees the waiter and
// hands it the slot, or the waiter's last try sees the free slot.
type limiter struct {
	inflight atomic.Int64 // slots held
	limit    atomic.Int64 // slots there are
	waiting  atomic.Int64 // requests queued or about to queue
	_        [40]byte     // the queue's lock apart from the fast path's line

	mu     sync.Mutex
	paid   waitList // served first
	unpaid waitList
	lim    limits

	now   func() time.Time
	epoch time.Time
	aimd  *aimd // nil in static mode

	held    holders
	metrics *routeMetrics
}

func newLimiter(lim limits, now func() time.Time, m *routeMetrics) *limiter {
	l := &limiter{lim: lim, now: now, epoch: now(), metrics: m}
	l.limit.Store(lim.max)
	l.held.init(lim.max)
	if lim.adaptive {
		l.aimd = newAIMD(lim)
	}
	return l
}

// tryAcquire takes a free slot without waiting, when nobody waits already
// (a newcomer must not overtake the queue).
func (l *limiter) tryAcquire() bool {
	return l.waiting.Load() == 0 && l.take()
}

// take takes a free slot if there is one.
func (l *limiter) take() bool {
	for {
		n := l.inflight.Load()
		if n >= l.limit.Load() {
			return false
		}
		if l.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire waits for a slot, for queue_timeout at most: the slow path, when
// tryAcquire failed. A paid request waits ahead of every unpaid one, and
// when the queue is full it takes the place of the unpaid request that came
// last.
func (l *limiter) acquire(paid bool) outcome {
	l.mu.Lock()
	l.waiting.Add(1) // before the last try: see the type's comment
	if l.queued() == 0 && l.take() {
		l.waiting.Add(-1)
		l.mu.Unlock()
		return admitted
	}
	if l.lim.queueTimeout <= 0 || l.lim.queueSize == 0 {
		l.waiting.Add(-1)
		l.mu.Unlock()
		return refusedFull
	}
	if l.queued() >= l.lim.queueSize {
		if !paid || l.unpaid.len == 0 {
			l.waiting.Add(-1)
			l.mu.Unlock()
			return refusedFull
		}
		l.leave(l.unpaid.back(), refusedEvicted)
	}
	w := acquireWaiter()
	if paid {
		l.paid.pushBack(w)
	} else {
		l.unpaid.pushBack(w)
	}
	l.metrics.queued.Inc()
	l.mu.Unlock()

	w.timer.Reset(l.lim.queueTimeout)
	select {
	case <-w.ready:
		w.timer.Stop()
	case <-w.timer.C:
		l.mu.Lock()
		if w.list != nil { // still queued: give up
			l.leave(w, refusedTimeout)
		}
		l.mu.Unlock()
		// Served or evicted as time ran out, or given up just now: the
		// answer is in the channel either way.
		<-w.ready
	}
	out := w.outcome
	releaseWaiter(w)
	return out
}

// queued is the number of requests in the queue; mu must be held.
func (l *limiter) queued() int { return l.paid.len + l.unpaid.len }

// leave takes w out of the queue with its answer and wakes it; mu must be
// held. A waiter served is handed the slot some request gave back, so
// inflight does not change.
func (l *limiter) leave(w *waiter, out outcome) {
	w.list.remove(w)
	w.outcome = out
	l.waiting.Add(-1)
	l.metrics.queued.Dec()
	w.ready <- struct{}{}
}

// release gives a slot back, to the first waiter if any.
func (l *limiter) release() {
	l.inflight.Add(-1)
	if l.waiting.Load() > 0 {
		l.dispatch()
	}
}

// dispatch hands free slots to waiters, paid ones first.
func (l *limiter) dispatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		w := l.paid.front()
		if w == nil {
			w = l.unpaid.front()
		}
		if w == nil || !l.take() {
			return
		}
		l.leave(w, admitted)
	}
}

// stamp is the time now, in nanoseconds since the limiter's epoch.
func (l *limiter) stamp() int64 { return int64(l.now().Sub(l.epoch)) }

// finish ends a request that held a slot since start (a stamp, or -1 when
// its latency is not to be measured).
func (l *limiter) finish(start int64) {
	if start >= 0 && l.aimd != nil {
		end := l.stamp()
		if next, changed := l.aimd.observe(end-start, end, l.inflight.Load(), l.limit.Load()); changed {
			l.setLimit(next)
		}
	}
	l.release()
}

// setLimit changes the limit (adaptive mode) and serves waiters when it
// grew.
func (l *limiter) setLimit(n int64) {
	old := l.limit.Swap(n)
	l.metrics.setLimit(l, n)
	if n > old && l.waiting.Load() > 0 {
		l.dispatch()
	}
}

// Close implements io.Closer for policy.State: a reload dropped the
// limiter. Requests still holding its slots give them back to it as they
// finish, and waiters are served by those, so nothing is cut short; only
// the limit gauge goes, unless a newer limiter of the route owns it.
func (l *limiter) Close() error {
	l.metrics.disown(l)
	return nil
}

// waiter is a request in the queue. Waiters are pooled with their channel
// and timer, so a full route does not allocate per waiting request.
type waiter struct {
	prev, next *waiter
	list       *waitList // nil once out of the queue
	outcome    outcome
	ready      chan struct{} // one value when the waiter leaves the queue
	timer      *time.Timer
}

var waiterPool sync.Pool

func acquireWaiter() *waiter {
	if w, ok := waiterPool.Get().(*waiter); ok {
		return w
	}
	w := &waiter{ready: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	return w
}

func releaseWaiter(w *waiter) {
	w.prev, w.next, w.list = nil, nil, nil
	waiterPool.Put(w)
}

// waitList is a first-in first-out list of waiters that can also drop any
// of them (one timing out, the newest one evicted).
type waitList struct {
	head, tail *waiter
	len        int
}

func (q *waitList) pushBack(w *waiter) {
	w.list, w.prev, w.next = q, q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.len++
}

func (q *waitList) front() *waiter { return q.head }
func (q *waitList) back() *waiter  { return q.tail }

func (q *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.list = nil, nil, nil
	q.len--
}
