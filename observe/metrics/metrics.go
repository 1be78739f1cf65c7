// Package metrics holds Tollgate's Prometheus metrics on a registry of its own.
//
// The request path touches metrics once per request, so the expensive part of
// client_golang (hashing label values to find a series) is moved off it: a
// route's series are resolved once, when a configuration snapshot is compiled
// (Route), and the per-(method, status) request counters are cached in arrays
// of atomic pointers filled on first use. After warm-up, Observe is a few
// atomic operations with no allocation and no shared lock.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Latency buckets in seconds. A gateway adds well under a millisecond, so the
// low end is finer than prometheus.DefBuckets; the high end covers slow
// upstreams up to the usual response timeouts.
var latencyBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// Metrics is the set of Tollgate's metrics and the registry that serves them.
// It is safe for concurrent use and outlives configuration reloads, so
// counters keep counting across them.
type Metrics struct {
	registry *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	upstream      *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
	h2Cutoffs     *prometheus.CounterVec
	health        *prometheus.GaugeVec
	configVersion prometheus.Gauge
	reloadsOK     prometheus.Counter
	reloadsError  prometheus.Counter

	mu     sync.Mutex // guards routes; taken only when snapshots are compiled
	routes map[routeKey]*RouteMetrics

	sourcesMu sync.Mutex // guards sources
	sources   []func() int64
}

type routeKey struct{ route, service string }

// New creates the metrics on a fresh registry, together with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Requests handled, by route, service, method and response status.",
		}, []string{"route", "service", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_request_duration_seconds",
			Help:    "Time from receiving a request to the end of its response, in seconds.",
			Buckets: latencyBuckets,
		}, []string{"route", "service"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_upstream_duration_seconds",
			Help:    "Time spent waiting on upstream calls, in seconds.",
			Buckets: latencyBuckets,
		}, []string{"service"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_rate_limited_total",
			Help: "Requests refused by a rate limit, by route.",
		}, []string{"route"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_upstream_health",
			Help: "Health of an upstream target: 1 healthy, 0 not.",
		}, []string{"service", "target"}),
		configVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_config_version",
			Help: "Version of the configuration being served.",
		}),
		routes: make(map[routeKey]*RouteMetrics),
	}
	// Read at scrape time from counters the request path keeps anyway, so a
	// request does not pay for a second contended atomic of its own here.
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tollgate_inflight_requests",
		Help: "Requests being handled right now.",
	}, m.inflightNow)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_config_reloads_total",
		Help: "Configuration reloads, by result (ok or error).",
	}, []string{"result"})
	// Both results exist from the start, so a rate() over errors is 0, not absent.
	m.reloadsOK = reloads.WithLabelValues("ok")
	m.reloadsError = reloads.WithLabelValues("error")

	m.h2Cutoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_http2_cutoffs_total",
		Help: "HTTP/2 connections closed with GOAWAY for abuse, by reason (PING flood, rapid reset...).",
	}, []string{"reason"})
	m.registry.MustRegister(
		m.requests, m.duration, m.upstream, m.rateLimited, m.health, m.h2Cutoffs,
		m.configVersion, inflight, reloads,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// HTTP2Cutoff counts an HTTP/2 connection cut off for abuse.
func (m *Metrics) HTTP2Cutoff(reason string) { m.h2Cutoffs.WithLabelValues(reason).Inc() }

// Registry returns the registry, for packages that add metrics of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		Registry:          m.registry, // counts scrape errors in promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	})
}

// Route returns the handles for one route's series. Call it when a snapshot is
// compiled, not per request. The same (route, service) always yields the same
// handles, so a reload keeps the lazily filled counter cache.
func (m *Metrics) Route(route, service string) *RouteMetrics {
	key := routeKey{route, service}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.routes[key]; ok {
		return r
	}
	r := &RouteMetrics{
		requests:    m.requests,
		route:       route,
		service:     service,
		duration:    m.duration.WithLabelValues(route, service),
		upstream:    m.upstream.WithLabelValues(service),
		rateLimited: m.rateLimited.WithLabelValues(route),
	}
	m.routes[key] = r
	return r
}

// SetUpstreamHealth records whether a target of a service is healthy.
func (m *Metrics) SetUpstreamHealth(service, target string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.health.WithLabelValues(service, target).Set(v)
}

// RemoveUpstream drops a target's health series, for targets that left the
// configuration.
func (m *Metrics) RemoveUpstream(service, target string) {
	m.health.DeleteLabelValues(service, target)
}

// SetConfigVersion records the version of the configuration being served.
func (m *Metrics) SetConfigVersion(v int64) { m.configVersion.Set(float64(v)) }

// Inflight is a gauge of requests in flight for code that has no counter of
// its own; Inc when a request starts and Dec when it ends.
// TrackInflight adds a counter of requests in flight (an engine's own) to the
// tollgate_inflight_requests gauge; it is read only when metrics are scraped.
func (m *Metrics) TrackInflight(count func() int64) {
	m.sourcesMu.Lock()
	defer m.sourcesMu.Unlock()
	m.sources = append(m.sources, count)
}

func (m *Metrics) inflightNow() float64 {
	var n int64
	m.sourcesMu.Lock()
	for _, f := range m.sources {
		n += f()
	}
	m.sourcesMu.Unlock()
	return float64(n)
}

// ConfigReload counts one reload attempt and its result.
func (m *Metrics) ConfigReload(ok bool) {
	if ok {
		m.reloadsOK.Inc()
		return
	}
	m.reloadsError.Inc()
}

// Method indexes: the common methods get their own label, anything else is
// counted as OTHER so a client cannot create series at will.
const (
	methodGET = iota
	methodHEAD
	methodPOST
	methodPUT
	methodPATCH
	methodDELETE
	methodOPTIONS
	methodOther
	numMethods
)

var methodLabels = [numMethods]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}

func methodIndex(method string) int {
	switch method {
	case "GET":
		return methodGET
	case "HEAD":
		return methodHEAD
	case "POST":
		return methodPOST
	case "PUT":
		return methodPUT
	case "PATCH":
		return methodPATCH
	case "DELETE":
		return methodDELETE
	case "OPTIONS":
		return methodOPTIONS
	}
	return methodOther
}

const (
	minStatus = 100
	maxStatus = 599
	// Statuses are cached per hundred (1xx..5xx) so a route only pays memory
	// for the status classes it actually answers with.
	numClasses = (maxStatus - minStatus + 1) / 100
)

// counterSlot boxes a Counter so it fits in an atomic.Pointer.
type counterSlot struct{ c prometheus.Counter }

type statusClass [100]atomic.Pointer[counterSlot]

// RouteMetrics records the requests of one route. Its methods are safe for
// concurrent use and do not allocate once a (method, status) pair has been
// seen.
type RouteMetrics struct {
	requests       *prometheus.CounterVec
	route, service string
	duration       prometheus.Observer
	upstream       prometheus.Observer
	rateLimited    prometheus.Counter
	counters       [numMethods][numClasses]atomic.Pointer[statusClass]
}

// Observe records one finished request: its method, response status, the
// whole time taken and the time spent on upstream calls (0 when there was no
// upstream call, which is then not observed).
func (r *RouteMetrics) Observe(method string, status int, total, upstream time.Duration) {
	r.counter(method, status).Inc()
	r.duration.Observe(total.Seconds())
	if upstream > 0 {
		r.upstream.Observe(upstream.Seconds())
	}
}

// RateLimited counts one request refused by a rate limit on this route.
func (r *RouteMetrics) RateLimited() { r.rateLimited.Inc() }

func (r *RouteMetrics) counter(method string, status int) prometheus.Counter {
	mi := methodIndex(method)
	if status < minStatus || status > maxStatus {
		// Not a valid HTTP status: rare enough to take the slow path.
		return r.requests.WithLabelValues(r.route, r.service, methodLabels[mi], strconv.Itoa(status))
	}
	off := status - minStatus
	classPtr := &r.counters[mi][off/100]
	class := classPtr.Load()
	if class == nil {
		class = new(statusClass)
		if !classPtr.CompareAndSwap(nil, class) {
			class = classPtr.Load()
		}
	}
	slot := &class[off%100]
	if s := slot.Load(); s != nil {
		return s.c
	}
	// Two goroutines may race here; both get the same series from the vec,
	// so whichever slot wins is equivalent.
	c := r.requests.WithLabelValues(r.route, r.service, methodLabels[mi], strconv.Itoa(status))
	slot.Store(&counterSlot{c: c})
	return c
}
