package redisstore

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/observe/metrics"
)

// storeMetrics are the series of one metrics registry (one gateway): read
// at scrape time from the connections and batched limiters alive in it.
type storeMetrics struct {
	fallbackDecisions prometheus.Counter

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	batched map[*Batched]struct{}
}

// perRegistry keeps the metrics of each registry, so that the series are
// registered once however often limiters are built.
var perRegistry = metrics.NewPerRegistry(newMetrics)

func metricsFor(reg *prometheus.Registry) *storeMetrics { return perRegistry.Get(reg) }

func newMetrics(reg *prometheus.Registry) *storeMetrics {
	m := &storeMetrics{
		fallbackDecisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_ratelimit_redis_fallback_decisions_total",
			Help: "Rate limit decisions made on the gateway alone because Redis did not answer.",
		}),
		conns:   map[*Conn]struct{}{},
		batched: map[*Batched]struct{}{},
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.fallbackDecisions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_ratelimit_redis_fallback",
			Help: "1 while Redis does not answer and rate limits are enforced by each gateway alone, else 0.",
		}, m.fallingBack),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_ratelimit_redis_gateways",
			Help: "Gateways seen sharing batched rate limits through Redis (0 without batched limits).",
		}, m.gateways),
	)
	return m
}

func (m *storeMetrics) addConn(c *Conn) {
	m.mu.Lock()
	m.conns[c] = struct{}{}
	m.mu.Unlock()
}

func (m *storeMetrics) removeConn(c *Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

func (m *storeMetrics) addBatched(b *Batched) {
	m.mu.Lock()
	m.batched[b] = struct{}{}
	m.mu.Unlock()
}

func (m *storeMetrics) removeBatched(b *Batched) {
	m.mu.Lock()
	delete(m.batched, b)
	m.mu.Unlock()
}

func (m *storeMetrics) fallingBack() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.conns {
		if !c.Up() {
			return 1
		}
	}
	return 0
}

func (m *storeMetrics) gateways() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(0)
	for b := range m.batched {
		n = max(n, b.gateways.Load())
	}
	return float64(n)
}
