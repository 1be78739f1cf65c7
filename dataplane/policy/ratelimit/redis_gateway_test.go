package ratelimit_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// redisConfig is a gateway configuration with one route /r limited by
// settings (a YAML flow mapping's inside) through the Redis at url.
func redisConfig(url, settings string) string {
	return server + fmt.Sprintf("redis: %q\nroutes:", url) + mockRoute("r", "/r", "{rate-limit: {"+settings+"}}")
}

func metric(t *testing.T, g *gatewaytest.Gateway, series string) string {
	t.Helper()
	v, ok := g.MetricValue(t, series)
	if !ok {
		t.Fatalf("no %s in the metrics", series)
	}
	return v
}

func TestRedisStrictIsSharedByGateways(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redisConfig(srv.URL, fmt.Sprintf("limit: 4, window: 1h, per: route, key_prefix: %q", redistest.Prefix()))
	a := gatewaytest.Start(t, cfg, nil)
	b := gatewaytest.Start(t, cfg, nil)
	wantStatuses(t, "gateway a", statuses(t, 2, a.URL+"/r"), 200, 200)
	wantStatuses(t, "gateway b", statuses(t, 3, b.URL+"/r"), 200, 200, 429)
	wantStatuses(t, "gateway a again", statuses(t, 1, a.URL+"/r"), 429)
	last := get(t, b.URL+"/r")
	wantHeader(t, last, "RateLimit-Remaining", "0")
	wantHeader(t, last, "Retry-After", "900")
	if v := metric(t, a, "tollgate_ratelimit_redis_fallback"); v != "0" {
		t.Fatalf("fallback gauge %s with Redis up", v)
	}
}

func TestRedisUnreachableFallsBackToLocalLimits(t *testing.T) {
	for _, mode := range []string{"strict", "batched"} {
		t.Run(mode, func(t *testing.T) {
			g := gatewaytest.Start(t, redisConfig("redis://"+testutil.ClosedPort(t), "limit: 2, window: 1h, per: route, sync: "+mode), nil)
			wantStatuses(t, "nothing listening at the Redis address", statuses(t, 3, g.URL+"/r"), 200, 200, 429)
			testutil.Eventually(t, 5*time.Second, "fallback gauge at 1", func() bool {
				return metric(t, g, "tollgate_ratelimit_redis_fallback") == "1"
			})
			wantStatuses(t, "Redis known down", statuses(t, 2, g.URL+"/r"), 429, 429)
			if n, _ := strconv.Atoi(metric(t, g, "tollgate_ratelimit_redis_fallback_decisions_total")); n < 2 {
				t.Fatalf("%d fallback decisions counted, want at least the last 2", n)
			}
		})
	}
}

func TestRedisOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	proxy := srv.Proxy(t)
	prefix := redistest.Prefix()
	g := gatewaytest.Start(t, redisConfig(proxy.URL, fmt.Sprintf("limit: 100, window: 1h, per: route, key_prefix: %q", prefix)), nil)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(opts)
	defer direct.Close()
	key := prefix + "r:route:100/1h0m0s:s:r"
	tat := func() int64 {
		v, _ := direct.Get(context.Background(), key).Int64()
		return v
	}

	wantStatuses(t, "Redis up", statuses(t, 1, g.URL+"/r"), 200)
	before := tat()
	if before == 0 {
		t.Fatalf("no TAT at %s: the decision was not made in Redis", key)
	}

	proxy.Cut()
	wantStatuses(t, "Redis cut", statuses(t, 3, g.URL+"/r"), 200, 200, 200)
	if v := metric(t, g, "tollgate_ratelimit_redis_fallback"); v != "1" {
		t.Fatalf("fallback gauge %s during the outage, want 1", v)
	}
	if tat() != before {
		t.Fatal("the TAT moved while Redis was cut off")
	}

	proxy.Restore()
	testutil.Eventually(t, 5*time.Second, "fallback gauge back at 0", func() bool {
		return metric(t, g, "tollgate_ratelimit_redis_fallback") == "0"
	})
	wantStatuses(t, "Redis back", statuses(t, 1, g.URL+"/r"), 200)
	if tat() <= before {
		t.Fatal("the decision after recovery was not made in Redis")
	}
}

func TestRedisBatchedIsSharedByGateways(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redisConfig(srv.URL, fmt.Sprintf("limit: 10, window: 1h, per: route, sync: batched, sync_interval: 10ms, key_prefix: %q", redistest.Prefix()))
	a := gatewaytest.Start(t, cfg, nil)
	b := gatewaytest.Start(t, cfg, nil)
	testutil.Eventually(t, 5*time.Second, "both gateways see two", func() bool {
		return metric(t, a, "tollgate_ratelimit_redis_gateways") == "2" && metric(t, b, "tollgate_ratelimit_redis_gateways") == "2"
	})
	admitted := 0
	for _, g := range []*gatewaytest.Gateway{a, b, a, b} {
		for _, s := range statuses(t, 10, g.URL+"/r") {
			if s == 200 {
				admitted++
			}
		}
	}
	// Each gateway's share of an unknown key is ⌈(10+1)/2⌉ = 6 per sync
	// interval; the bound is 10 + 2·(2−1)·6.
	if admitted < 10 || admitted > 22 {
		t.Fatalf("%d admitted by two batched gateways, want 10 to 22", admitted)
	}
	testutil.Eventually(t, 5*time.Second, "both gateways refuse once synced", func() bool {
		return get(t, a.URL+"/r").status == 429 && get(t, b.URL+"/r").status == 429
	})
	last := get(t, a.URL+"/r")
	wantHeader(t, last, "RateLimit-Limit", "10")
	wantHeader(t, last, "RateLimit-Remaining", "0")
}
