package loadshed_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy/loadshed"
	"github.com/tollgate/tollgate/internal/testutil"
)

func durationp(d time.Duration) *config.Duration { c := config.Duration(d); return &c }
func intp(n int) *int                            { return &n }

// adaptive is a limiter between 2 and 20 aiming at a p90 of 200ms, on a
// manual clock.
func adaptive(t *testing.T) (*loadshed.Limiter, *testutil.Clock) {
	t.Helper()
	clock := testutil.NewClock()
	l := loadshed.NewLimiter(loadshed.Settings{
		MaxConcurrent: 20, MinConcurrent: 2, Mode: "adaptive",
		TargetLatency: config.Duration(200 * time.Millisecond), AdjustInterval: config.Duration(time.Second),
	}, clock.Now)
	return l, clock
}

// window runs one adjust interval's worth of requests: n at once (all
// slots when n is 0), each taking one of latencies (under the interval),
// then lets the interval end so that the next request to finish closes the
// window. It returns the limit
// after the window was closed, by a probe request finishing first thing in
// the next one.
func window(l *loadshed.Limiter, clock *testutil.Clock, n int, latencies ...time.Duration) int64 {
	if n == 0 {
		n = int(l.Limit())
	}
	starts := make([]int64, n)
	for i := range starts {
		starts[i] = l.Start()
	}
	for i, s := range starts {
		lat := latencies[i%len(latencies)]
		clock.Advance(lat)
		l.Finish(s)
		clock.Advance(-lat)
	}
	clock.Advance(time.Second)
	l.Finish(l.Start()) // a probe that takes no time: closes the window
	return l.Limit()
}

func TestAdaptiveLimitGoesDownUnderSlowUpstreamAndUpAgain(t *testing.T) {
	l, clock := adaptive(t)
	if l.Limit() != 20 {
		t.Fatalf("adaptive limit starts at %d, want max_concurrent 20", l.Limit())
	}
	// Slow: down by a tenth per window (rounded down), to the floor.
	var got []int64
	for range 16 {
		got = append(got, window(l, clock, 0, 300*time.Millisecond))
	}
	want := []int64{18, 16, 14, 12, 10, 9, 8, 7, 6, 5, 4, 3, 2, 2, 2, 2}
	if !equal(got, want) {
		t.Fatalf("limits under a slow upstream: %v, want %v", got, want)
	}
	// Fast again, with the route using its slots: up by one per window, to
	// the ceiling.
	got = got[:0]
	for range 20 {
		got = append(got, window(l, clock, 0, 50*time.Millisecond))
	}
	want = []int64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 20, 20}
	if !equal(got, want) {
		t.Fatalf("limits under a fast upstream: %v, want %v", got, want)
	}
	if l.Inflight() != 0 {
		t.Fatalf("%d slots still held", l.Inflight())
	}
}

// The limit moves on the 90th percentile: one slow request in ten is
// within it, two are not.
func TestAdaptiveLimitFollowsTheNinetiethPercentile(t *testing.T) {
	l, clock := adaptive(t)
	fast, slow := 100*time.Millisecond, 250*time.Millisecond
	// 19 requests at once (the probe makes 20 samples): 2 slow of 20 is
	// p90 at the target's side.
	if got := window(l, clock, 19, slow, fast, fast, fast, fast, fast, fast, fast, fast, fast); got != 20 {
		t.Fatalf("2 slow of 20: limit %d, want 20 (unchanged at the ceiling)", got)
	}
	if got := window(l, clock, 19, slow, slow, fast, fast, fast, fast, fast); got != 18 {
		t.Fatalf("6 slow of 20: limit %d, want 18", got)
	}
}

// A route using a fraction of its limit says nothing about a higher one:
// fast answers do not raise the limit of an idle route.
func TestAdaptiveLimitDoesNotCreepUpWhileIdle(t *testing.T) {
	l, clock := adaptive(t)
	window(l, clock, 0, 300*time.Millisecond) // 20 → 18
	for range 5 {
		if got := window(l, clock, 1, time.Millisecond); got != 18 {
			t.Fatalf("limit of an idle route moved to %d, want 18", got)
		}
	}
}

// outcomes runs Acquire in a goroutine per name, and reports each outcome
// on the channel as "name outcome".
type outcomes chan string

func (o outcomes) acquire(l *loadshed.Limiter, name string, paid bool) {
	go func() { o <- name + " " + l.Acquire(paid) }()
}

func waitQueued(t *testing.T, l *loadshed.Limiter, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "requests queued", func() bool { return l.Queued() == n })
}

func (o outcomes) want(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-o:
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no outcome, want %q", want)
	}
}

func TestPaidRequestsAreServedFirst(t *testing.T) {
	l := loadshed.NewLimiter(loadshed.Settings{MaxConcurrent: 1, QueueSize: intp(10), QueueTimeout: durationp(time.Minute)}, time.Now)
	if got := l.Acquire(false); got != "admitted" {
		t.Fatal(got)
	}
	o := make(outcomes)
	o.acquire(l, "u1", false)
	waitQueued(t, l, 1)
	o.acquire(l, "p1", true)
	waitQueued(t, l, 2)
	o.acquire(l, "u2", false)
	waitQueued(t, l, 3)
	o.acquire(l, "p2", true)
	waitQueued(t, l, 4)
	for _, want := range []string{"p1", "p2", "u1", "u2"} {
		l.Finish(-1)
		o.want(t, want+" admitted")
	}
	l.Finish(-1)
	if l.Inflight() != 0 || l.Queued() != 0 {
		t.Fatalf("inflight %d, queued %d after all finished", l.Inflight(), l.Queued())
	}
}

func TestPaidRequestEvictsTheNewestUnpaidWaiter(t *testing.T) {
	l := loadshed.NewLimiter(loadshed.Settings{MaxConcurrent: 1, QueueSize: intp(2), QueueTimeout: durationp(time.Minute)}, time.Now)
	l.Acquire(false)
	o := make(outcomes)
	o.acquire(l, "u1", false)
	waitQueued(t, l, 1)
	o.acquire(l, "u2", false)
	waitQueued(t, l, 2)
	if got := l.Acquire(false); got != "full" {
		t.Fatalf("unpaid request with the queue full: %s, want full", got)
	}
	o.acquire(l, "p1", true)
	o.want(t, "u2 evicted")
	waitQueued(t, l, 2)
	o.acquire(l, "p2", true)
	o.want(t, "u1 evicted")
	waitQueued(t, l, 2)
	// Nobody left to evict: a paid request is refused like any other.
	if got := l.Acquire(true); got != "full" {
		t.Fatalf("paid request with a queue of paid requests: %s, want full", got)
	}
	l.Finish(-1)
	o.want(t, "p1 admitted")
	l.Finish(-1)
	o.want(t, "p2 admitted")
	l.Finish(-1)
}

func TestQueueTimeoutAndNoQueue(t *testing.T) {
	l := loadshed.NewLimiter(loadshed.Settings{MaxConcurrent: 1, QueueTimeout: durationp(20 * time.Millisecond)}, time.Now)
	l.Acquire(false)
	if got := l.Acquire(true); got != "timeout" {
		t.Fatalf("waited past queue_timeout: %s", got)
	}
	if l.Queued() != 0 {
		t.Fatalf("a request that gave up is still queued")
	}
	l.Finish(-1)
	if got := l.Acquire(false); got != "admitted" {
		t.Fatalf("after the slot came back: %s", got)
	}

	none := loadshed.NewLimiter(loadshed.Settings{MaxConcurrent: 1, QueueTimeout: durationp(0)}, time.Now)
	none.Acquire(false)
	if got := none.Acquire(true); got != "full" {
		t.Fatalf("queue_timeout 0: %s, want refused at once", got)
	}
}

// Many requests at once on few slots: never more in flight than the
// limit, every one served or refused, no slot lost.
func TestLimitHoldsUnderContention(t *testing.T) {
	const limit, workers, rounds = 3, 16, 300
	l := loadshed.NewLimiter(loadshed.Settings{MaxConcurrent: limit, QueueSize: intp(4), QueueTimeout: durationp(time.Second)}, time.Now)
	var running, peak, served atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				if l.Acquire(w%3 == 0) != "admitted" {
					continue
				}
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				served.Add(1)
				running.Add(-1)
				l.Finish(-1)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d requests in flight at once, limit %d", p, limit)
	}
	if served.Load() == 0 || l.Inflight() != 0 || l.Queued() != 0 {
		t.Fatalf("served %d, inflight %d, queued %d", served.Load(), l.Inflight(), l.Queued())
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
