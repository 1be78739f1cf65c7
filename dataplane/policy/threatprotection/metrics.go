package threatprotection

import (
	"runtime"
	"sync"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
)

// banMetrics are the ban series of one metrics registry (one gateway),
// shared by every ban table the gateway builds.
type banMetrics struct {
	bans prometheus.Counter

	mu     sync.Mutex
	tables map[*banTable]struct{}
}

// registries keeps the ban metrics of each registry, so that the series are
// registered once however often policies are built, reloads included. The
// registry is held weakly: a gateway that is gone takes its entry along.
var registries struct {
	sync.Mutex
	m map[weak.Pointer[prometheus.Registry]]*banMetrics
}

// metricsFor returns the ban metrics registered in reg, registering them
// the first time; with a nil reg they count without being exposed.
func metricsFor(reg *prometheus.Registry) *banMetrics {
	key := weak.Make(reg)
	registries.Lock()
	defer registries.Unlock()
	if m, ok := registries.m[key]; ok {
		return m
	}
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
	if registries.m == nil {
		registries.m = map[weak.Pointer[prometheus.Registry]]*banMetrics{}
	}
	registries.m[key] = m
	runtime.AddCleanup(reg, func(key weak.Pointer[prometheus.Registry]) {
		registries.Lock()
		delete(registries.m, key)
		registries.Unlock()
	}, key)
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
