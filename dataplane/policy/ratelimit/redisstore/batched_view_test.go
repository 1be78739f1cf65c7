package redisstore

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/internal/testutil"
)

// viewLimiter is a Batched limiter without its sync loop, on a manual
// clock, for the decisions between syncs. Its connection is never used, so
// it counts as up.
func viewLimiter(t *testing.T, limit int64, window time.Duration, gateways int64) (*Batched, *testutil.Clock) {
	t.Helper()
	conn, err := Open("127.0.0.1:1", ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	clock := testutil.NewClock()
	b := newBatched(conn, gcra.NewRate(limit, window), "unused:", BatchedOptions{Every: 50 * time.Millisecond, Now: clock.Now})
	b.gateways.Store(gateways)
	return b, clock
}

func admit(b *Batched, key string, n int) int {
	ok := 0
	for range n {
		if b.Allow([]byte(key)).Allowed {
			ok++
		}
	}
	return ok
}

// fakeSync plays one tick: it takes the dirty list and answers for Redis,
// whose state is the key's cluster TAT (backlog at the moment of the sync)
// and push count.
type fakeRedis struct {
	backlog, pushed int64 // µs ahead of now; admissions ever pushed
}

func (r *fakeRedis) sync(t *testing.T, b *Batched, others int64) {
	t.Helper()
	tick := b.tick.Add(1)
	b.dirtyMu.Lock()
	list := b.dirty
	b.dirty = nil
	b.dirtyMu.Unlock()
	interval := b.rate.Interval / int64(time.Microsecond)
	r.backlog += others * interval
	r.pushed += others
	now := b.clock()
	for _, v := range list {
		v.mu.Lock()
		n := v.pending
		v.pending, v.listed = 0, false
		v.mu.Unlock()
		r.backlog += n * interval
		r.pushed += n
		b.apply(v, tick, now, n, r.backlog, r.pushed)
	}
}

func TestBatchedUnknownKeyGetsAShare(t *testing.T) {
	b, _ := viewLimiter(t, 90, time.Hour, 3)
	// A key this gateway never synced may be in use elsewhere: a third of
	// the allowance (plus one interval's refill, rounded up) until the sync.
	if n := admit(b, "k", 90); n != 31 {
		t.Fatalf("%d admitted before the first sync, want 31 (⌈(90+1)/3⌉)", n)
	}
	d := b.Allow([]byte("k"))
	if d.Allowed || d.RetryAfter != 50*time.Millisecond {
		t.Fatalf("share spent: %+v, want refused until the next sync", d)
	}
}

func TestBatchedAloneOnAKeyIsExact(t *testing.T) {
	b, _ := viewLimiter(t, 90, time.Hour, 3)
	var r fakeRedis
	if n := admit(b, "k", 100); n != 31 {
		t.Fatalf("%d admitted before the first sync, want the share of 31", n)
	}
	// Nobody else pushed yet, but the others may have spent their shares
	// unseen: 59 free - 2×31 leaves nothing but the minimum of 1.
	r.sync(t, b, 0)
	if n := admit(b, "k", 100); n != 1 {
		t.Fatalf("%d admitted after one sync showing no one else, want 1", n)
	}
	// Two syncs in a row showing no one else: the view alone decides.
	r.sync(t, b, 0)
	if n := admit(b, "k", 100); n != 58 {
		t.Fatalf("%d admitted once alone, want the remaining 58", n)
	}
	r.sync(t, b, 0)
	if n := admit(b, "k", 10); n != 0 {
		t.Fatalf("%d admitted beyond the limit", n)
	}
}

func TestBatchedContendedKeySharesWhatIsFree(t *testing.T) {
	b, _ := viewLimiter(t, 90, time.Hour, 3)
	var r fakeRedis
	admit(b, "k", 10)
	r.sync(t, b, 20) // 60 free, but the others may have spent 2×31 unseen
	if n := admit(b, "k", 90); n != 1 {
		t.Fatalf("%d admitted after the first sync, want the minimum of 1", n)
	}
	r.sync(t, b, 5) // 54 free, less 2×1 the others may hold: ⌈(52+1)/3⌉
	if n := admit(b, "k", 90); n != 18 {
		t.Fatalf("%d admitted on a contended key, want 18", n)
	}
	r.sync(t, b, 60) // the others took the rest and more
	if n := admit(b, "k", 10); n != 0 {
		t.Fatalf("%d admitted with the cluster over its limit", n)
	}
}

func TestBatchedStaleKeyGetsAShareAgain(t *testing.T) {
	b, clock := viewLimiter(t, 90, time.Hour, 3)
	var r fakeRedis
	for range 2 {
		admit(b, "k", 1)
		r.sync(t, b, 0)
	}
	if n := admit(b, "k", 1); n != 1 {
		t.Fatal("alone on the key, yet refused")
	}
	r.sync(t, b, 0)
	r.sync(t, b, 0) // an interval without requests here: the view is stale
	clock.Advance(50 * time.Millisecond)
	if n := admit(b, "k", 90); n != 30 {
		t.Fatalf("%d admitted on a stale view, want a share: 30 (⌈(87+1)/3⌉)", n)
	}
}

func TestBatchedRedisDownLimitsAlone(t *testing.T) {
	b, _ := viewLimiter(t, 90, time.Hour, 3)
	b.conn.down.Store(true)
	if n := admit(b, "k", 100); n != 90 {
		t.Fatalf("%d admitted with Redis down, want the whole limit of 90 (no shares)", n)
	}
}

func TestBatchedSweep(t *testing.T) {
	b, clock := viewLimiter(t, 10, time.Second, 1)
	var r fakeRedis
	admit(b, "k", 1)
	b.sweep()
	if b.views.Len() != 1 {
		t.Fatal("a view with admissions to push was swept")
	}
	r.sync(t, b, 0)
	b.tick.Add(1)
	clock.Advance(time.Second)
	r.backlog = 0
	b.sweep()
	if b.views.Len() != 0 {
		t.Fatalf("%d idle views left after the sweep", b.views.Len())
	}
	if n := admit(b, "k", 1); n != 1 {
		t.Fatal("a swept key is not usable again")
	}
}

func TestBatchedAllowDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	b, _ := viewLimiter(t, 1<<30, time.Hour, 1)
	key := []byte("c:alice")
	b.Allow(key)
	b.conn.down.Store(false)
	if n := testing.AllocsPerRun(1000, func() { b.Allow(key) }); n != 0 {
		t.Fatalf("Allow on a known key allocates %.1f times, want 0", n)
	}
}
