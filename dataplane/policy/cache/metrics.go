package cache

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/observe/metrics"
)

// cacheMetrics are the cache series of one metrics registry (one gateway).
type cacheMetrics struct {
	requests *prometheus.CounterVec
	fallback prometheus.Counter
}

// perRegistry keeps the metrics of each registry, so that the series are
// registered once however often policies are built, reloads included.
var perRegistry = metrics.NewPerRegistry(newMetrics)

// metricsFor returns the metrics registered in reg, registering them the
// first time; with a nil reg they count without being exposed.
func metricsFor(reg *prometheus.Registry) *cacheMetrics { return perRegistry.Get(reg) }

func newMetrics(reg *prometheus.Registry) *cacheMetrics {
	m := &cacheMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_requests_total",
			Help: "Requests a cache policy looked at, by route and result: hit (answered from the cache), miss (sent upstream), bypass (the request's Cache-Control ruled the cache out).",
		}, []string{"route", "result"}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_cache_redis_fallback_total",
			Help: "Cache reads and writes that did not reach Redis (failed, or skipped while it is out) and used the gateway's memory alone.",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.requests, m.fallback)
	return m
}

// routeCounters are one route's request counters, resolved once per build
// so that counting costs an atomic add.
type routeCounters struct {
	hit, miss, bypass prometheus.Counter
}

func (m *cacheMetrics) route(route string) routeCounters {
	return routeCounters{
		hit:    m.requests.WithLabelValues(route, "hit"),
		miss:   m.requests.WithLabelValues(route, "miss"),
		bypass: m.requests.WithLabelValues(route, "bypass"),
	}
}
