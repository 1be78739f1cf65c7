package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/gcra"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/local"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redisstore"
	"github.com/tollgate/tollgate/observe/metrics"
)

func init() {
	policy.Register("rate-limit", policy.Limit, build)
}

// rejected is the answer beyond the limit; Retry-After says when to come
// back.
var rejected = &policy.Reject{Status: 429, Code: "rate_limited", Message: "rate limit exceeded; retry after the number of seconds in Retry-After"}

func build(raw *Settings, b *policy.Build) (any, error) {
	s := raw.withDefaults()
	kind, header, _ := parsePer(s.Per)
	rm := b.RouteMetrics
	if rm == nil {
		rm = metrics.New().Route(b.Route, b.Service)
	}
	h := &handler{per: kind, header: header, metrics: rm}
	if s.Limit > 0 {
		l, err := limiterFor(&s, gcra.NewRate(s.Limit, s.Window.D()), b)
		if err != nil {
			return nil, err
		}
		h.limiter, h.limit = l, strconv.FormatInt(s.Limit, 10)
	}
	if s.FromPlan {
		h.plans = map[string]planLimit{}
		for name, pl := range b.Plans {
			rl := pl.RateLimit
			if rl == nil || rl.Limit < 1 || rl.Window <= 0 {
				continue
			}
			ps := s
			ps.Limit, ps.Window = int64(rl.Limit), rl.Window
			l, err := limiterFor(&ps, gcra.NewRate(ps.Limit, ps.Window.D()), b)
			if err != nil {
				return nil, err
			}
			h.plans[name] = planLimit{limiter: l, limit: strconv.FormatInt(ps.Limit, 10)}
		}
	}
	return h, nil
}

// planLimit is the limit of the consumers of one plan (from_plan).
type planLimit struct {
	limiter *limiter
	limit   string
}

// limiter is a route's rate limit state: kept in policy.State so that it
// survives reloads that keep its settings. Exactly one of its stores is set.
type limiter struct {
	local   *local.Limiter
	strict  *redisstore.Strict
	batched *redisstore.Batched
}

func (l *limiter) allow(key []byte) gcra.Decision {
	switch {
	case l.strict != nil:
		return l.strict.Allow(key)
	case l.batched != nil:
		return l.batched.Allow(key)
	}
	return l.local.Allow(key)
}

// Close stops the limiter's background work (a reload dropped it).
func (l *limiter) Close() error {
	switch {
	case l.strict != nil:
		return l.strict.Close()
	case l.batched != nil:
		return l.batched.Close()
	}
	return l.local.Close()
}

// limiterFor returns the route's limiter from the policy state, making it
// (and the Redis connection it needs) the first time.
func limiterFor(s *Settings, rate gcra.Rate, b *policy.Build) (*limiter, error) {
	var conn *redisstore.Conn
	if b.Redis != "" {
		if err := redisstore.ParseURL(b.Redis); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		conn = b.State.Get("rate-limit\x00redis\x00"+b.Redis, func() any {
			c, _ := redisstore.Open(b.Redis, redisstore.ConnOptions{Logger: logger(b), Registry: registry(b)})
			return c // the URL parsed above, so Open does not fail
		}).(*redisstore.Conn)
	}
	stateKey := fmt.Sprintf("rate-limit\x00%s\x00%d/%s\x00%s\x00%s/%s/%s\x00%s\x00%s",
		b.Route, s.Limit, s.Window, s.Per, s.Sync, s.SyncInterval, s.RedisTimeout, s.KeyPrefix, b.Redis)
	l := b.State.Get(stateKey, func() any {
		if conn == nil {
			return &limiter{local: local.New(rate, local.Options{})}
		}
		// The Redis keys name the route and what shapes the limit, so
		// gateways with the same configuration share them and a changed
		// limit starts afresh, as it does in memory.
		prefix := fmt.Sprintf("%s%s:%s:%d/%s:", s.KeyPrefix, b.Route, s.Per, s.Limit, s.Window)
		if s.Sync == "batched" {
			return &limiter{batched: redisstore.NewBatched(conn, rate, prefix+"b:", redisstore.BatchedOptions{
				Every: s.SyncInterval.D(), Timeout: s.RedisTimeout.D(),
			})}
		}
		return &limiter{strict: redisstore.NewStrict(conn, rate, prefix+"s:", s.RedisTimeout.D(), local.New(rate, local.Options{}))}
	}).(*limiter)
	return l, nil
}

func logger(b *policy.Build) *slog.Logger {
	if b.Logger == nil {
		return slog.Default()
	}
	return b.Logger
}

func registry(b *policy.Build) *prometheus.Registry {
	if b.Metrics == nil {
		return nil
	}
	return b.Metrics.Registry()
}

// handler is the policy on one route.
type handler struct {
	per     int
	header  string
	limiter *limiter // nil with from_plan and no limit of its own
	metrics *metrics.RouteMetrics
	limit   string // RateLimit-Limit
	// plans are the limits of plans' consumers, by plan (from_plan).
	plans map[string]planLimit
}

// keyBuf is sized for the common keys (an IPv6 address, a consumer name,
// an API key); longer ones still work, at the cost of an allocation.
const keyBuf = 96

// Handle counts the request against its key and sets the headers.
func (h *handler) Handle(x *policy.Exchange) *policy.Reject {
	l, limit := h.limiter, h.limit
	if c := x.Consumer; c != nil && h.plans != nil {
		if pl, ok := h.plans[c.Plan]; ok {
			l, limit = pl.limiter, pl.limit
		}
	}
	if l == nil {
		return nil // from_plan: a consumer whose plan sets no rate limit
	}
	var buf [keyBuf]byte
	d := l.allow(h.key(x, buf[:0]))
	var num [20]byte
	x.SetAnswerHeader("RateLimit-Limit", limit)
	x.SetAnswerHeaderBytes("RateLimit-Remaining", strconv.AppendInt(num[:0], d.Remaining, 10))
	x.SetAnswerHeaderBytes("RateLimit-Reset", strconv.AppendInt(num[:0], gcra.Seconds(d.Reset), 10))
	if d.Allowed {
		return nil
	}
	x.SetAnswerHeaderBytes("Retry-After", strconv.AppendInt(num[:0], max(1, gcra.Seconds(d.RetryAfter)), 10))
	h.metrics.RateLimited()
	return rejected
}

// maxHeaderKey is the longest header value used as a key as it is; longer
// ones are replaced by a digest, so a client cannot make the gateway (or
// Redis) keep kilobytes per key.
const maxHeaderKey = 64

// key appends the request's key to buf: a kind letter, then the identity,
// so that a consumer named like an address is not that address.
func (h *handler) key(x *policy.Exchange, buf []byte) []byte {
	switch h.per {
	case perRoute:
		return append(buf, 'r')
	case perConsumer:
		if c := x.Consumer; c != nil {
			return append(append(buf, "c:"...), c.Name...)
		}
	case perHeader:
		if v := x.Header(h.header); len(v) > 0 {
			if len(v) > maxHeaderKey {
				sum := sha256.Sum256(v)
				return hex.AppendEncode(append(buf, "h#"...), sum[:16])
			}
			return append(append(buf, "h:"...), v...)
		}
	}
	return x.ClientIP().AppendTo(append(buf, "i:"...))
}
