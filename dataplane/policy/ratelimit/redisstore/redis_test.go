package redisstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/local"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redisstore"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// syncBuffer is a log destination tests read while the code writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func open(t *testing.T, url string, logs *syncBuffer) *redisstore.Conn {
	t.Helper()
	opts := redisstore.ConnOptions{ProbeEvery: 20 * time.Millisecond}
	if logs != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	c, err := redisstore.Open(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newStrict(t *testing.T, conn *redisstore.Conn, rate gcra.Rate, prefix string) *redisstore.Strict {
	t.Helper()
	s := redisstore.NewStrict(conn, rate, prefix, 500*time.Millisecond, local.New(rate, local.Options{}))
	t.Cleanup(func() { s.Close() })
	return s
}

func client(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestParseURL(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6379", "redis://127.0.0.1:6379/0", "rediss://user:pw@redis.example.com:6380/2"} {
		if err := redisstore.ParseURL(ok); err != nil {
			t.Errorf("ParseURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:6379/notadb"} {
		if err := redisstore.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestStrictIsExactAcrossGateways(t *testing.T) {
	srv := redistest.Start(t)
	rate := gcra.NewRate(20, time.Hour)
	prefix := redistest.Prefix()
	gateways := []*redisstore.Strict{
		newStrict(t, open(t, srv.URL, nil), rate, prefix),
		newStrict(t, open(t, srv.URL, nil), rate, prefix),
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 15 {
				if gateways[i%2].Allow([]byte("k")).Allowed {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 20 {
		t.Fatalf("%d of 60 admitted by two gateways, want exactly 20", ok.Load())
	}
	d := gateways[0].Allow([]byte("k"))
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 3*time.Minute {
		t.Fatalf("spent key: %+v, want refused with a retry within one interval (3m)", d)
	}
	ttl := client(t, srv).PTTL(context.Background(), prefix+"k").Val()
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("key TTL %s, want the time until the allowance is whole (~1h)", ttl)
	}
}

func TestStrictReloadsAFlushedScript(t *testing.T) {
	srv := redistest.Start(t)
	s := newStrict(t, open(t, srv.URL, nil), gcra.NewRate(5, time.Hour), redistest.Prefix())
	if !s.Allow([]byte("k")).Allowed {
		t.Fatal("first request refused")
	}
	if err := client(t, srv).ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	d := s.Allow([]byte("k")) // EVALSHA answers NOSCRIPT; EVAL runs it
	if !d.Allowed || d.Remaining != 3 {
		t.Fatalf("after SCRIPT FLUSH: %+v, want admitted by Redis with 3 remaining", d)
	}
}

func TestStrictFallsBackWhileRedisIsDownAndComesBack(t *testing.T) {
	srv := redistest.Start(t)
	proxy := srv.Proxy(t)
	logs := &syncBuffer{}
	conn := open(t, proxy.URL, logs)
	prefix := redistest.Prefix()
	s := newStrict(t, conn, gcra.NewRate(3, time.Hour), prefix)
	if !s.Allow([]byte("k")).Allowed || !conn.Up() {
		t.Fatal("first request not decided by Redis")
	}

	proxy.Cut()
	// Requests that find Redis gone are decided locally; after a few
	// failures in a row the connection is down and requests stop trying
	// Redis. The local limiter has its own full allowance of 3.
	for i := range 3 {
		if !s.Allow([]byte("k")).Allowed {
			t.Fatalf("request %d during the outage refused; the local fallback allows 3", i)
		}
	}
	if s.Allow([]byte("k")).Allowed {
		t.Fatal("the local fallback did not limit")
	}
	if conn.Up() {
		t.Fatal("connection still up after failed calls")
	}
	if n := strings.Count(logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("%d outage log lines, want 1:\n%s", n, logs)
	}

	proxy.Restore()
	testutil.Eventually(t, 5*time.Second, "redis used again", conn.Up)
	if !strings.Contains(logs.String(), "redis reachable again") {
		t.Fatalf("no recovery log line:\n%s", logs)
	}
	// Redis still holds the 1 admission from before: 2 more.
	if n := allowed(s, "k", 5); n != 2 {
		t.Fatalf("%d admitted after recovery, want the 2 Redis has left", n)
	}
}

func allowed(s interface{ Allow([]byte) gcra.Decision }, key string, n int) int {
	ok := 0
	for range n {
		if s.Allow([]byte(key)).Allowed {
			ok++
		}
	}
	return ok
}

func TestClosedPortFallsBackAndLogsOnce(t *testing.T) {
	logs := &syncBuffer{}
	conn := open(t, testutil.ClosedPort(t), logs)
	s := newStrict(t, conn, gcra.NewRate(2, time.Hour), "unused:")
	if n := allowed(s, "k", 5); n != 2 {
		t.Fatalf("%d admitted with Redis refusing connections, want the local 2", n)
	}
	if conn.Up() {
		t.Fatal("connection up with nothing listening")
	}
	if n := strings.Count(logs.String(), "redis unreachable"); n != 1 {
		t.Fatalf("%d outage log lines for 5 requests, want 1", n)
	}
}

func newBatched(t *testing.T, conn *redisstore.Conn, rate gcra.Rate, prefix string) *redisstore.Batched {
	t.Helper()
	b := redisstore.NewBatched(conn, rate, prefix, redisstore.BatchedOptions{Every: 10 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBatchedSharesTheLimit(t *testing.T) {
	srv := redistest.Start(t)
	rate := gcra.NewRate(30, time.Hour)
	prefix := redistest.Prefix()
	a := newBatched(t, open(t, srv.URL, nil), rate, prefix)
	b := newBatched(t, open(t, srv.URL, nil), rate, prefix)
	testutil.Eventually(t, 5*time.Second, "both gateways see each other", func() bool {
		return a.Gateways() == 2 && b.Gateways() == 2
	})
	// a is alone on the key: after its first sync it may use all of it.
	first := allowed(a, "k", 30)
	testutil.Eventually(t, 5*time.Second, "a uses the whole limit once synced", func() bool {
		first += allowed(a, "k", 1)
		return first >= 30
	})
	if first != 30 {
		t.Fatalf("a admitted %d, want 30", first)
	}
	// b learns at its first sync that nothing is left. Before that it may
	// spend its share of what its view thinks free: at most ⌈(30+1)/2⌉.
	extra := allowed(b, "k", 30)
	if extra > 16 {
		t.Fatalf("b admitted %d before its first sync, more than its share of 16", extra)
	}
	testutil.Eventually(t, 5*time.Second, "b's view synced", func() bool {
		return !b.Allow([]byte("k")).Allowed
	})
	if n := allowed(b, "k", 10) + allowed(a, "k", 10); n != 0 {
		t.Fatalf("%d admitted after the sync showed the limit spent", n)
	}
}

func TestBatchedCloseLeavesTheHeartbeatSet(t *testing.T) {
	srv := redistest.Start(t)
	rate := gcra.NewRate(10, time.Second)
	prefix := redistest.Prefix()
	a := newBatched(t, open(t, srv.URL, nil), rate, prefix)
	b := redisstore.NewBatched(open(t, srv.URL, nil), rate, prefix, redisstore.BatchedOptions{Every: 10 * time.Millisecond})
	testutil.Eventually(t, 5*time.Second, "two gateways", func() bool { return a.Gateways() == 2 })
	b.Close()
	if n := client(t, srv).ZCard(context.Background(), prefix+"gateways").Val(); n != 1 {
		t.Fatalf("%d members after one gateway closed, want 1", n)
	}
}

func BenchmarkRedisStrict(b *testing.B) {
	srv := redistest.Start(b)
	conn, err := redisstore.Open(srv.URL, redisstore.ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rate := gcra.NewRate(1<<30, time.Hour)
	s := redisstore.NewStrict(conn, rate, redistest.Prefix(), time.Second, local.New(rate, local.Options{}))
	defer s.Close()
	key := []byte("c:bench")
	b.ReportAllocs()
	b.SetParallelism(8) // requests in flight per core, as a busy gateway has
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.Allow(key).Allowed {
				b.Error("refused")
				return
			}
		}
	})
	if !conn.Up() {
		b.Fatal("decided locally: Redis went down during the benchmark")
	}
}

func BenchmarkBatched(b *testing.B) {
	srv := redistest.Start(b)
	conn, err := redisstore.Open(srv.URL, redisstore.ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	l := redisstore.NewBatched(conn, gcra.NewRate(1<<30, time.Hour), redistest.Prefix(), redisstore.BatchedOptions{})
	defer l.Close()
	key := []byte("c:bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !l.Allow(key).Allowed {
				b.Error("refused")
				return
			}
		}
	})
}
