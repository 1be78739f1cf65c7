package quota

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redisstore"
	"github.com/tollgate/tollgate/observe/metrics"
)

func init() {
	policy.Register("quota", policy.Limit, build)
}

// exceeded is the answer once the quota is used up; Retry-After says when
// the period ends.
var exceeded = &policy.Reject{Status: 429, Code: "quota_exceeded",
	Message: "quota: exceeded; it renews after the number of seconds in Retry-After"}

// clock is the time periods are taken from; tests replace it.
var clock atomic.Pointer[func() time.Time]

func now() time.Time {
	if f := clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// planQuota is a plan's quota, ready for requests.
type planQuota struct {
	requests int64
	limit    string // X-Quota-Limit
	period   period
}

func build(_ *Settings, b *policy.Build) (any, error) {
	plans := map[string]*planQuota{}
	for name, p := range b.Plans {
		if p == nil || p.Quota == nil {
			continue
		}
		per, ok := parsePeriod(p.Quota.Period)
		if !ok || p.Quota.Requests < 1 {
			return nil, fmt.Errorf("plan %q: bad quota %d per %q", name, p.Quota.Requests, p.Quota.Period)
		}
		plans[name] = &planQuota{requests: p.Quota.Requests, limit: strconv.FormatInt(p.Quota.Requests, 10), period: per}
	}
	c, err := countersFor(b)
	if err != nil {
		return nil, err
	}
	rm := b.RouteMetrics
	if rm == nil {
		rm = metrics.New().Route(b.Route, b.Service)
	}
	return &handler{plans: plans, counters: c, metrics: rm}, nil
}

// countersFor returns the gateway's counters from the policy state, shared
// by every route and kept across reloads (and the Redis connection they
// use, one per URL).
func countersFor(b *policy.Build) (*counters, error) {
	var conn *redisstore.Conn
	if b.Redis != "" {
		if err := redisstore.ParseURL(b.Redis); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		log := b.Logger
		if log == nil {
			log = slog.Default()
		}
		conn = b.State.Get("quota\x00redis\x00"+b.Redis, func() any {
			c, _ := redisstore.Open(b.Redis, redisstore.ConnOptions{Logger: log.With("policy", "quota")})
			return c // the URL parsed above, so Open does not fail
		}).(*redisstore.Conn)
	}
	return b.State.Get("quota\x00counters\x00"+b.Redis, func() any { return newCounters(conn) }).(*counters), nil
}

// handler is the policy on one route.
type handler struct {
	plans    map[string]*planQuota // by plan name, plans with a quota only
	counters *counters
	metrics  *metrics.RouteMetrics
}

// Handle counts the request against its consumer's quota and sets the
// headers.
func (h *handler) Handle(x *policy.Exchange) *policy.Reject {
	c := x.Consumer
	if c == nil || c.Plan == "" {
		return nil
	}
	q := h.plans[c.Plan]
	if q == nil {
		return nil
	}
	t := now()
	start, end := q.period.bounds(t)
	used := h.counters.add(c.Name, q.period, start, end)
	reset := int64((end.Sub(t) + time.Second - 1) / time.Second)
	var num [20]byte
	x.SetAnswerHeader("X-Quota-Limit", q.limit)
	x.SetAnswerHeaderBytes("X-Quota-Remaining", strconv.AppendInt(num[:0], max(0, q.requests-used), 10))
	x.SetAnswerHeaderBytes("X-Quota-Reset", strconv.AppendInt(num[:0], reset, 10))
	if used <= q.requests {
		return nil
	}
	x.SetAnswerHeaderBytes("Retry-After", strconv.AppendInt(num[:0], max(1, reset), 10))
	h.metrics.RateLimited()
	return exceeded
}
