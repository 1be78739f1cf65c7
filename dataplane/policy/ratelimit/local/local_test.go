package local

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/internal/testutil"
)

func newLimiter(t *testing.T, limit int64, window time.Duration) (*Limiter, *testutil.Clock) {
	clock := testutil.NewClock()
	l := New(gcra.NewRate(limit, window), Options{Now: clock.Now, SweepEvery: -1})
	t.Cleanup(func() { l.Close() })
	return l, clock
}

func admitted(l *Limiter, key string, n int) int {
	ok := 0
	for range n {
		if l.Allow([]byte(key)).Allowed {
			ok++
		}
	}
	return ok
}

func TestLimitPerKey(t *testing.T) {
	l, clock := newLimiter(t, 5, 10*time.Second)
	if n := admitted(l, "a", 8); n != 5 {
		t.Fatalf("key a: %d of 8 admitted, want 5", n)
	}
	if n := admitted(l, "b", 8); n != 5 {
		t.Fatalf("key b: %d of 8 admitted, want 5 (keys are independent)", n)
	}
	d := l.Allow([]byte("a"))
	if d.Allowed || d.RetryAfter != 2*time.Second {
		t.Fatalf("key a spent: %+v, want refused for 2s", d)
	}
	clock.Advance(2 * time.Second)
	if n := admitted(l, "a", 3); n != 1 {
		t.Fatalf("2s later: %d admitted, want the 1 that refilled", n)
	}
}

// A fixed window admits a whole limit at the end of one window and another
// at the start of the next, milliseconds apart. GCRA admits limit + d/T
// over any span d.
func TestNoBurstAtWindowEdge(t *testing.T) {
	const limit, window = 100, time.Minute
	l, clock := newLimiter(t, limit, window)
	clock.Advance(window - time.Millisecond)
	if n := admitted(l, "k", limit); n != limit {
		t.Fatalf("%d admitted at the end of the first window, want %d", n, limit)
	}
	clock.Advance(2 * time.Millisecond) // into the next window
	if n := admitted(l, "k", limit); n != 0 {
		t.Fatalf("%d admitted just past the window edge, want 0", n)
	}
	clock.Advance(window / 2)
	if n := admitted(l, "k", limit); n != limit/2 {
		t.Fatalf("%d admitted half a window later, want %d", n, limit/2)
	}

	// Over a long run of steady pressure, no span of length d ever holds
	// more than limit + d/T admissions.
	l2, clock2 := newLimiter(t, 10, time.Second)
	var times []time.Duration
	for ms := range 5000 {
		if l2.Allow([]byte("k")).Allowed {
			times = append(times, time.Duration(ms)*time.Millisecond)
		}
		clock2.Advance(time.Millisecond)
	}
	interval := time.Second / 10
	for i := range times {
		for j := i; j < len(times); j++ {
			span := times[j] - times[i]
			if n := j - i + 1; int64(n) > 10+int64(span/interval) {
				t.Fatalf("%d admissions within %s, more than 10 + %s/%s", n, span, span, interval)
			}
		}
	}
	if len(times) != 10+49 {
		t.Fatalf("%d admitted over 5s, want 10 at once + 49 refills", len(times))
	}
}

func TestConcurrentRequestsOnOneKey(t *testing.T) {
	l, _ := newLimiter(t, 1000, time.Hour)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if l.Allow([]byte("hot")).Allowed {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1000 {
		t.Fatalf("%d admitted, want exactly 1000", ok.Load())
	}
}

func TestSweepDropsOnlyIdleKeys(t *testing.T) {
	l, clock := newLimiter(t, 10, 10*time.Second)
	for i := range 1000 {
		admitted(l, "idle-"+strconv.Itoa(i), 10) // allowance whole again in 10s
	}
	clock.Advance(5 * time.Second)
	admitted(l, "busy", 10)
	if n := l.Sweep(); n != 0 {
		t.Fatalf("swept %d keys still within their window", n)
	}
	clock.Advance(5 * time.Second)
	if n := l.Sweep(); n != 1000 || l.Len() != 1 {
		t.Fatalf("swept %d, %d left; want the 1000 idle ones swept and busy kept", n, l.Len())
	}
	if n := admitted(l, "busy", 10); n != 5 {
		t.Fatalf("busy key after the sweep: %d admitted, want 5 (its state kept)", n)
	}
}

// Requests racing the sweep never see a swept slot's state twice: the
// total admitted stays what one key allows.
func TestSweepRacingRequests(t *testing.T) {
	clock := testutil.NewClock()
	l := New(gcra.NewRate(50, time.Second), Options{Now: clock.Now, SweepEvery: -1})
	defer l.Close()
	var ok atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				l.Sweep()
			}
		}
	})
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			for range 200 {
				if l.Allow([]byte("k")).Allowed {
					ok.Add(1)
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
	if ok.Load() != 50 {
		t.Fatalf("%d admitted with a racing sweep, want 50", ok.Load())
	}
}

func TestBackgroundSweepEndsOnClose(t *testing.T) {
	l := New(gcra.NewRate(1, time.Millisecond), Options{SweepEvery: time.Millisecond})
	l.Allow([]byte("k"))
	testutil.Eventually(t, 2*time.Second, "idle key swept in the background", func() bool { return l.Len() == 0 })
	l.Close()
	l.Close() // idempotent
}

func TestAllowDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	l, _ := newLimiter(t, 1<<40, time.Hour)
	key := []byte("c:alice")
	l.Allow(key)
	if n := testing.AllocsPerRun(1000, func() { l.Allow(key) }); n != 0 {
		t.Fatalf("Allow on a known key allocates %.1f times, want 0", n)
	}
}

func BenchmarkLocalAllow(b *testing.B) {
	for _, keys := range []int{1, 1024, 65536} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			l := New(gcra.NewRate(1<<40, time.Hour), Options{})
			defer l.Close()
			names := make([][]byte, keys)
			for i := range names {
				names[i] = []byte("i:10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
				l.Allow(names[i])
			}
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(7919))
				for pb.Next() {
					l.Allow(names[i%keys])
					i++
				}
			})
		})
	}
}
