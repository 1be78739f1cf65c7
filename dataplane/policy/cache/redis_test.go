package cache_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate/tollgate/app"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// waitForEntries waits until Redis holds n entries under prefix: writes
// to Redis happen beside the answer.
func waitForEntries(t *testing.T, srv *redistest.Server, prefix string, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d entries in Redis", n), func() bool {
		return countEntries(t, srv, prefix) == n
	})
}

// countEntries counts the entries (not the names keys) under prefix.
func countEntries(t *testing.T, srv *redistest.Server, prefix string) int {
	t.Helper()
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	keys, err := client.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for _, k := range keys {
		if strings.Count(k[len(prefix):], ":") == 3 {
			entries++
		}
	}
	return entries
}

// host is the Host of the requests to gateways sharing a cache: the host
// is part of the key, and the gateways' own addresses differ.
const host = "api.example.com"

// redisConfig is config with the configuration's redis set.
func redisConfig(redisURL, target, settings string) string {
	return gatewayConfig(target, settings) + fmt.Sprintf("redis: %q\n", redisURL)
}

func TestRedisSharedBetweenGateways(t *testing.T) {
	srv := redistest.Start(t)
	b := countingBackend(t, "Content-Type", "application/json")
	prefix := redistest.Prefix()
	settings := fmt.Sprintf("{key_prefix: %q}", prefix)
	one := start(t, redisConfig(srv.URL, b.URL, settings), nil)
	two := start(t, redisConfig(srv.URL, b.URL, settings), nil)

	expect(t, "gateway one", get(t, one.URL+"/shared?q=1", "Host", host), "MISS", "answer 1")
	waitForEntries(t, srv, prefix, 1)
	a := get(t, two.URL+"/shared?q=1", "Host", host)
	expect(t, "gateway two", a, "HIT", "answer 1")
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q from Redis", a.header.Get("Content-Type"))
	}
	expectCalls(t, b, 1)
	// Now in gateway two's memory too.
	expect(t, "gateway two again", get(t, two.URL+"/shared?q=1", "Host", host), "HIT", "answer 1")

	// A purge through gateway one's admin API empties Redis and every
	// gateway's memory.
	if code, n := purge(t, one, "/api/cache/api", "ops-secret"); code != 200 || n != 1 {
		t.Errorf("purge: %d purged %d, want 200 and 1", code, n)
	}
	expect(t, "gateway two after the purge", get(t, two.URL+"/shared?q=1", "Host", host), "MISS", "answer 2")
}

// Entries kept in Redis follow the response's Vary too: a gateway that
// never saw the resource finds the variant under the names Redis records.
func TestRedisVary(t *testing.T) {
	srv := redistest.Start(t)
	b := countingBackend(t, "Vary", "Accept-Language")
	prefix := redistest.Prefix()
	settings := fmt.Sprintf("{key_prefix: %q}", prefix)
	one := start(t, redisConfig(srv.URL, b.URL, settings), nil)
	two := start(t, redisConfig(srv.URL, b.URL, settings), nil)

	get(t, one.URL+"/v", "Host", host, "Accept-Language", "fr")
	get(t, one.URL+"/v", "Host", host, "Accept-Language", "it")
	waitForEntries(t, srv, prefix, 2)
	expect(t, "fr", get(t, two.URL+"/v", "Host", host, "Accept-Language", "fr"), "HIT", "answer 1")
	expect(t, "it", get(t, two.URL+"/v", "Host", host, "Accept-Language", "it"), "HIT", "answer 2")
	expect(t, "de is nobody's", get(t, two.URL+"/v", "Host", host, "Accept-Language", "de"), "MISS", "answer 3")
}

// Expiry follows the entry's freshness, not only Redis's TTL.
func TestRedisExpiry(t *testing.T) {
	srv := redistest.Start(t)
	b := countingBackend(t)
	clock := testutil.NewClock()
	prefix := redistest.Prefix()
	settings := fmt.Sprintf("{key_prefix: %q, ttl: 10s}", prefix)
	one := start(t, redisConfig(srv.URL, b.URL, settings), clock)
	two := start(t, redisConfig(srv.URL, b.URL, settings), clock)
	get(t, one.URL+"/e", "Host", host)
	waitForEntries(t, srv, prefix, 1)
	clock.Advance(9 * time.Second)
	a := get(t, two.URL+"/e", "Host", host)
	expect(t, "from Redis", a, "HIT", "answer 1")
	if a.header.Get("Age") != "9" {
		t.Errorf("Age %q, want 9: the age is the entry's, whoever stored it", a.header.Get("Age"))
	}
	clock.Advance(2 * time.Second)
	expect(t, "expired", get(t, two.URL+"/e", "Host", host), "MISS", "answer 2")
}

// Without Redis, the cache works from each gateway's memory and counts
// the calls that did not reach Redis.
func TestRedisOutageFallsBackToMemory(t *testing.T) {
	srv := redistest.Start(t)
	proxy := srv.Proxy(t)
	b := countingBackend(t)
	prefix := redistest.Prefix()
	g := start(t, redisConfig(proxy.URL, b.URL, fmt.Sprintf("{key_prefix: %q}", prefix)), nil)

	proxy.Cut()
	for i := range 5 {
		path := "/o" + strconv.Itoa(i)
		expect(t, path, get(t, g.URL+path), "MISS", "")
		expect(t, path+" again", get(t, g.URL+path), "HIT", "")
	}
	v, _ := g.MetricValue(t, "tollgate_cache_redis_fallback_total")
	if n, _ := strconv.Atoi(v); n == 0 {
		t.Errorf("tollgate_cache_redis_fallback_total = %q, want the failed calls counted", v)
	}

	// Once Redis answers again, entries go there again.
	proxy.Restore()
	i := 0
	testutil.Eventually(t, 10*time.Second, "an entry stored in Redis after the outage", func() bool {
		i++
		get(t, g.URL+"/after"+strconv.Itoa(i))
		return countEntries(t, srv, prefix) > 0
	})
}

func TestRedisNeedsTheConfigurationsRedis(t *testing.T) {
	b := countingBackend(t)
	// redis: false keeps a memory cache even with redis set; redis: true
	// without it is refused.
	srv := redistest.Start(t)
	g := start(t, redisConfig(srv.URL, b.URL, "{redis: false}"), nil)
	get(t, g.URL+"/m")
	expect(t, "memory only", get(t, g.URL+"/m"), "HIT", "answer 1")

	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, []byte(gatewayConfig(b.URL, "{redis: true}")), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		a.Shutdown(context.Background())
		t.Fatal("redis: true without the configuration's redis was accepted")
	}
	if !strings.Contains(err.Error(), "redis: true needs the configuration's redis") {
		t.Errorf("error %q does not say what is missing", err)
	}
}
