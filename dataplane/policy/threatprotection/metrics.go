package threatprotection

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tollgate/tollgate/observe/metrics"
)

// banMetrics are the ban series of one metrics registry (one gateway),
// shared by every ban table the gateway builds.
type banMetrics struct {
	bans prometheus.Counter

	mu     sync.Mutex
	tables map[*banTable]struct{}
}

// perRegistry keeps the metrics of each registry, so that the series are
// registered once however often policies are built, reloads included.
var perRegistry = metrics.NewPerRegistry(newMetrics)

// metricsFor returns the metrics registered in reg, registering them the
// first time; with a nil reg they count without being exposed.
func metricsFor(reg *prometheus.Registry) *banMetrics { return perRegistry.Get(reg) }

func newMetrics(reg *prometheus.Registry) *banMetrics {
	m := &banMetrics{
		bans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_bans_total",
			Help: "Client addresses banned by threat-protection after repeated authentication failures.",
		}),
		tables: map[*banTable]struct{}{},
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.bans, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tollgate_banned_clients",
		Help: "Client addresses banned by threat-protection right now.",
	}, m.activeBans))
	return m
}

func (m *banMetrics) track(t *banTable) {
	m.mu.Lock()
	m.tables[t] = struct{}{}
	m.mu.Unlock()
}

func (m *banMetrics) untrack(t *banTable) {
	m.mu.Lock()
	delete(m.tables, t)
	m.mu.Unlock()
}

// activeBans is the gauge's value, counted when scraped.
func (m *banMetrics) activeBans() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for t := range m.tables {
		n += t.activeBans()
	}
	return float64(n)
}
