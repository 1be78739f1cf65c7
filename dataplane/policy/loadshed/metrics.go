package loadshed

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/observe/metrics"
)

// shedMetrics are the load-shed series of one metrics registry (one
// gateway), shared by every route's limiters.
type shedMetrics struct {
	limit   *prometheus.GaugeVec
	queued  *prometheus.GaugeVec
	refused *prometheus.CounterVec

	// owners is the limiter whose limit each route's gauge shows. A reload
	// that changes the settings builds a new limiter while the old one still
	// serves the requests that started before it; the newest owns the gauge.
	mu     sync.Mutex
	owners map[string]*limiter
}

// perRegistry keeps the metrics of each registry, so that the series are
// registered once however often policies are built, reloads included.
var perRegistry = metrics.NewPerRegistry(newMetrics)

// metricsFor returns the metrics registered in reg, registering them the
// first time; with a nil reg they count without being exposed.
func metricsFor(reg *prometheus.Registry) *shedMetrics { return perRegistry.Get(reg) }

func newMetrics(reg *prometheus.Registry) *shedMetrics {
	m := &shedMetrics{
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_load_shed_limit",
			Help: "Requests a route lets through to its upstream at once (load-shed); in adaptive mode the limit now in force.",
		}, []string{"route"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_load_shed_queued",
			Help: "Requests waiting for a free slot of a route's load-shed limit.",
		}, []string{"route"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_load_shed_total",
			Help: "Requests refused by load-shed (503 overloaded), by route.",
		}, []string{"route"}),
		owners: map[string]*limiter{},
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.limit, m.queued, m.refused)
	return m
}

// routeMetrics are one route's series, resolved once per limiter.
type routeMetrics struct {
	set     *shedMetrics
	route   string
	limit   prometheus.Gauge
	queued  prometheus.Gauge
	refused prometheus.Counter
}

func (m *shedMetrics) route(route string) *routeMetrics {
	return &routeMetrics{
		set:     m,
		route:   route,
		limit:   m.limit.WithLabelValues(route),
		queued:  m.queued.WithLabelValues(route),
		refused: m.refused.WithLabelValues(route),
	}
}

// own makes l the limiter the route's limit gauge shows: the one the
// latest build of the route's policies uses.
func (r *routeMetrics) own(l *limiter) {
	r.set.mu.Lock()
	r.set.owners[r.route] = l
	r.limit.Set(float64(l.limit.Load()))
	r.set.mu.Unlock()
}

// setLimit shows l's new limit, when l owns the gauge.
func (r *routeMetrics) setLimit(l *limiter, n int64) {
	r.set.mu.Lock()
	if r.set.owners[r.route] == l {
		r.limit.Set(float64(n))
	}
	r.set.mu.Unlock()
}

// disown drops the route's limit gauge when l, which a reload dropped,
// still owns it: the route has no load-shed any more.
func (r *routeMetrics) disown(l *limiter) {
	r.set.mu.Lock()
	if r.set.owners[r.route] == l {
		delete(r.set.owners, r.route)
		r.set.limit.DeleteLabelValues(r.route)
	}
	r.set.mu.Unlock()
}
