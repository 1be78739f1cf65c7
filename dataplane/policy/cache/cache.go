package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/cache/store"
)

// Name is the policy's name in configurations.
const Name = "cache"

func init() {
	policy.Register(Name, policy.Proxy, build)
}

// clock is the time the caches made from now on go by (tests set it).
var clock = time.Now

func build(raw *Settings, b *policy.Build) (any, error) {
	s := raw.withDefaults(b.Redis)
	if *s.Redis && b.Redis == "" {
		return nil, errors.New("redis: true needs the configuration's redis URL (the top-level redis setting)")
	}
	m := metricsFor(nil)
	if b.Metrics != nil {
		m = metricsFor(b.Metrics.Registry())
	}
	state := b.State
	if state == nil {
		state = policy.NewState()
	}
	var shared *store.Redis
	if *s.Redis {
		if err := store.CheckURL(b.Redis); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		shared = state.Get("cache\x00redis\x00"+b.Redis, func() any {
			r, _ := store.OpenRedis(b.Redis, store.RedisOptions{Logger: logger(b), Fallback: m.fallback.Inc})
			return r // the URL was checked above, so OpenRedis does not fail
		}).(*store.Redis)
	}
	c := state.Get("cache\x00"+b.Route+"\x00"+s.key()+"\x00"+b.Redis, func() any {
		return newRouteCache(b.Route, &s, shared)
	}).(*routeCache)

	h := &handler{
		cache:       c,
		counters:    m.route(b.Route),
		keyNames:    s.keyNames(),
		keyConsumer: s.KeyConsumer,
		private:     s.CachePrivate,
		ttl:         s.TTL.D(),
		maxBody:     s.MaxBodyBytes,
		lockTimeout: s.LockTimeout.D(),
	}
	for _, method := range s.Methods {
		switch method {
		case "GET":
			h.get = true
		case "HEAD":
			h.head = true
		}
	}
	if len(s.Vary) > 0 {
		h.vary = canonicalNames(s.Vary)
	}
	return h, nil
}

func logger(b *policy.Build) *slog.Logger {
	if b.Logger == nil {
		return slog.Default()
	}
	return b.Logger
}

// routeCache is a route's cache: kept in the policy state, so that a reload
// that keeps the route's settings keeps its entries.
type routeCache struct {
	route   string
	mem     *store.Memory
	redis   *store.Redis // nil: memory only
	prefix  string       // Redis key prefix
	now     func() time.Time
	flights flights
	stop    func() // stops listening for purges
}

func newRouteCache(route string, s *Settings, shared *store.Redis) *routeCache {
	c := &routeCache{
		route:  route,
		mem:    store.NewMemory(s.MemoryBytes, int64(s.MaxBodyBytes)),
		redis:  shared,
		prefix: s.KeyPrefix,
		now:    clock,
		stop:   func() {},
	}
	if shared != nil {
		c.stop = shared.Listen(s.KeyPrefix, c.mem)
	}
	register(c)
	return c
}

// Close forgets the cache: a reload no longer asks for it.
func (c *routeCache) Close() error {
	unregister(c)
	c.stop()
	return nil
}

// keys names the Redis keys of a resource.
func (c *routeCache) keys(resource []byte) *store.Keys {
	return &store.Keys{Prefix: c.prefix, Route: c.route, Resource: string(resource)}
}

// joinLines joins a header's lines into one value.
func joinLines(lines [][]byte) string {
	if len(lines) == 1 {
		return string(lines[0])
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.Write(l)
	}
	return b.String()
}
