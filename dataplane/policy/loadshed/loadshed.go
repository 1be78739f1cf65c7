package loadshed

import (
	"time"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "load-shed"

func init() {
	policy.Register(Name, policy.Proxy, build)
}

// The refusals, one per outcome; all 503 "overloaded" with Retry-After.
var refusals = [...]*policy.Reject{
	refusedFull:    {Status: 503, Code: "overloaded", Message: "the route is at its concurrency limit and its queue is full; retry after the number of seconds in Retry-After"},
	refusedTimeout: {Status: 503, Code: "overloaded", Message: "the route is at its concurrency limit and no slot became free in time; retry after the number of seconds in Retry-After"},
	refusedEvicted: {Status: 503, Code: "overloaded", Message: "the route is at its concurrency limit and requests of paid plans went first; retry after the number of seconds in Retry-After"},
}

func build(raw *Settings, b *policy.Build) (any, error) {
	s := raw.withDefaults()
	var m *shedMetrics
	if b.Metrics != nil {
		m = metricsFor(b.Metrics.Registry())
	} else {
		m = metricsFor(nil)
	}
	create := func() any { return newLimiter(s.limits(), time.Now, m.route(b.Route)) }
	var l *limiter
	if b.State != nil {
		l = b.State.Get("load-shed\x00"+b.Route+"\x00"+s.key(), create).(*limiter)
	} else {
		l = create().(*limiter)
	}
	l.metrics.own(l)
	h := &handler{lim: l, retryAfter: s.retryAfter()}
	for name, p := range b.Plans {
		if p != nil && p.Price != nil && p.Price.Amount > 0 {
			if h.paidPlans == nil {
				h.paidPlans = map[string]bool{}
			}
			h.paidPlans[name] = true
		}
	}
	return h, nil
}

// handler is the policy on one route, for one configuration snapshot. Its
// limiter may outlive it: snapshots whose settings for the route are the
// same share it, so a reload neither forgets the adaptive limit nor lets
// more requests through while the old snapshot's are still in flight.
type handler struct {
	lim        *limiter
	paidPlans  map[string]bool // plans with a price above zero
	retryAfter string
}

// Handle takes a slot for the request, waiting for one when the route is
// full.
func (h *handler) Handle(x *policy.Exchange) *policy.Reject {
	l := h.lim
	if !l.tryAcquire() {
		if out := l.acquire(h.paid(x)); out != admitted {
			l.metrics.refused.Inc()
			x.SetAnswerHeader("Retry-After", h.retryAfter)
			return refusals[out]
		}
	}
	start := int64(-1)
	// A WebSocket holds its slot for as long as it is open, but how long
	// that is says nothing about the upstream's latency.
	if l.aimd != nil && len(x.Header("Upgrade")) == 0 {
		start = l.stamp()
	}
	l.held.add(x, start)
	return nil
}

// Finish gives the request's slot back, if it took one: the engine also
// calls Finish for requests refused before the upstream call, by this
// policy or an earlier one.
func (h *handler) Finish(x *policy.Exchange) {
	if start, ok := h.lim.held.remove(x); ok {
		h.lim.finish(start)
	}
}

// paid reports whether the request's consumer is on a plan with a price.
func (h *handler) paid(x *policy.Exchange) bool {
	c := x.Consumer
	return c != nil && h.paidPlans[c.Plan]
}
