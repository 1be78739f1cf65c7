package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches the metrics over real HTTP and parses the text format.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return families
}

// series returns the metric of family name whose labels are exactly labels,
// or nil.
func series(families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	fam := families[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

func mustSeries(t *testing.T, families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	m := series(families, name, labels)
	if m == nil {
		t.Fatalf("series %s%v not found", name, labels)
	}
	return m
}

type observation struct {
	method          string
	status          int
	total, upstream time.Duration
}

func TestObserveIsScraped(t *testing.T) {
	type wantCount struct {
		method, status string
		count          float64
	}
	tests := []struct {
		name          string
		observations  []observation
		counts        []wantCount
		durationCount uint64
		durationSum   float64
		upstreamCount uint64
		upstreamSum   float64
	}{
		{
			name: "one GET with upstream",
			observations: []observation{
				{"GET", 200, 30 * time.Millisecond, 20 * time.Millisecond},
			},
			counts:        []wantCount{{"GET", "200", 1}},
			durationCount: 1, durationSum: 0.030,
			upstreamCount: 1, upstreamSum: 0.020,
		},
		{
			name: "methods and statuses are separate series",
			observations: []observation{
				{"GET", 200, time.Millisecond, time.Millisecond},
				{"GET", 200, time.Millisecond, time.Millisecond},
				{"GET", 404, time.Millisecond, 0},
				{"POST", 201, 2 * time.Millisecond, time.Millisecond},
				{"DELETE", 503, time.Millisecond, time.Millisecond},
			},
			counts: []wantCount{
				{"GET", "200", 2}, {"GET", "404", 1}, {"POST", "201", 1}, {"DELETE", "503", 1},
			},
			durationCount: 5, durationSum: 0.006,
			upstreamCount: 4, upstreamSum: 0.004,
		},
		{
			name: "no upstream call is not observed as upstream time",
			observations: []observation{
				{"GET", 429, time.Millisecond, 0},
			},
			counts:        []wantCount{{"GET", "429", 1}},
			durationCount: 1, durationSum: 0.001,
		},
		{
			name: "unknown methods share the OTHER label",
			observations: []observation{
				{"PROPFIND", 207, time.Millisecond, 0},
				{"BREW", 418, time.Millisecond, 0},
				{"BREW", 418, time.Millisecond, 0},
			},
			counts:        []wantCount{{"OTHER", "207", 1}, {"OTHER", "418", 2}},
			durationCount: 3, durationSum: 0.003,
		},
		{
			name: "edges of the cached status range and outside it",
			observations: []observation{
				{"HEAD", 100, time.Millisecond, 0},
				{"HEAD", 599, time.Millisecond, 0},
				{"HEAD", 0, time.Millisecond, 0},
				{"HEAD", 600, time.Millisecond, 0},
				{"HEAD", 600, time.Millisecond, 0},
			},
			counts: []wantCount{
				{"HEAD", "100", 1}, {"HEAD", "599", 1}, {"HEAD", "0", 1}, {"HEAD", "600", 2},
			},
			durationCount: 5, durationSum: 0.005,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			r := m.Route("users-api", "users")
			for _, o := range tt.observations {
				r.Observe(o.method, o.status, o.total, o.upstream)
			}
			fams := scrape(t, m)

			var total float64
			for _, c := range tt.counts {
				got := mustSeries(t, fams, "tollgate_requests_total", map[string]string{
					"route": "users-api", "service": "users", "method": c.method, "status": c.status,
				}).GetCounter().GetValue()
				if got != c.count {
					t.Errorf("requests{%s,%s} = %v, want %v", c.method, c.status, got, c.count)
				}
				total += c.count
			}
			if n := len(fams["tollgate_requests_total"].GetMetric()); n != len(tt.counts) {
				t.Errorf("requests series = %d, want %d", n, len(tt.counts))
			}

			h := mustSeries(t, fams, "tollgate_request_duration_seconds",
				map[string]string{"route": "users-api", "service": "users"}).GetHistogram()
			if h.GetSampleCount() != tt.durationCount {
				t.Errorf("duration count = %d, want %d", h.GetSampleCount(), tt.durationCount)
			}
			if !near(h.GetSampleSum(), tt.durationSum) {
				t.Errorf("duration sum = %v, want %v", h.GetSampleSum(), tt.durationSum)
			}

			u := mustSeries(t, fams, "tollgate_upstream_duration_seconds",
				map[string]string{"service": "users"}).GetHistogram()
			if u.GetSampleCount() != tt.upstreamCount {
				t.Errorf("upstream count = %d, want %d", u.GetSampleCount(), tt.upstreamCount)
			}
			if !near(u.GetSampleSum(), tt.upstreamSum) {
				t.Errorf("upstream sum = %v, want %v", u.GetSampleSum(), tt.upstreamSum)
			}
		})
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func TestRouteReturnsSameHandles(t *testing.T) {
	m := New()
	a := m.Route("r", "s")
	b := m.Route("r", "s")
	if a != b {
		t.Fatal("Route with the same labels returned different handles")
	}
	if m.Route("r", "other") == a {
		t.Fatal("Route with a different service returned the same handles")
	}
	a.Observe("GET", 200, time.Millisecond, 0)
	b.Observe("GET", 200, time.Millisecond, 0)
	a.RateLimited()
	b.RateLimited()

	fams := scrape(t, m)
	got := mustSeries(t, fams, "tollgate_requests_total",
		map[string]string{"route": "r", "service": "s", "method": "GET", "status": "200"}).GetCounter().GetValue()
	if got != 2 {
		t.Errorf("requests = %v, want 2", got)
	}
	limited := mustSeries(t, fams, "tollgate_rate_limited_total",
		map[string]string{"route": "r"}).GetCounter().GetValue()
	if limited != 2 {
		t.Errorf("rate limited = %v, want 2", limited)
	}
}

func TestUpstreamHealth(t *testing.T) {
	type step struct {
		set     bool // false: remove
		healthy bool
	}
	tests := []struct {
		name    string
		steps   []step
		want    float64
		present bool
	}{
		{"healthy", []step{{set: true, healthy: true}}, 1, true},
		{"unhealthy", []step{{set: true, healthy: false}}, 0, true},
		{"recovers", []step{{set: true, healthy: false}, {set: true, healthy: true}}, 1, true},
		{"removed", []step{{set: true, healthy: true}, {set: false}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			// A second target that is never removed, to show removal is precise.
			m.SetUpstreamHealth("users", "127.0.0.1:9002", true)
			for _, s := range tt.steps {
				if s.set {
					m.SetUpstreamHealth("users", "127.0.0.1:9001", s.healthy)
				} else {
					m.RemoveUpstream("users", "127.0.0.1:9001")
				}
			}
			fams := scrape(t, m)
			got := series(fams, "tollgate_upstream_health", map[string]string{"service": "users", "target": "127.0.0.1:9001"})
			if (got != nil) != tt.present {
				t.Fatalf("series present = %v, want %v", got != nil, tt.present)
			}
			if got != nil && got.GetGauge().GetValue() != tt.want {
				t.Errorf("health = %v, want %v", got.GetGauge().GetValue(), tt.want)
			}
			mustSeries(t, fams, "tollgate_upstream_health", map[string]string{"service": "users", "target": "127.0.0.1:9002"})
		})
	}
}

func TestProcessWideGauges(t *testing.T) {
	m := New()
	fams := scrape(t, m)
	for _, result := range []string{"ok", "error"} {
		if v := mustSeries(t, fams, "tollgate_config_reloads_total", map[string]string{"result": result}).GetCounter().GetValue(); v != 0 {
			t.Errorf("fresh reloads{%s} = %v, want 0", result, v)
		}
	}

	m.SetConfigVersion(42)
	m.ConfigReload(true)
	m.ConfigReload(true)
	m.ConfigReload(false)
	var inflight atomic.Int64
	inflight.Store(2)
	m.TrackInflight(inflight.Load)

	fams = scrape(t, m)
	checks := []struct {
		name   string
		labels map[string]string
		get    func(*dto.Metric) float64
		want   float64
	}{
		{"tollgate_config_version", map[string]string{}, gaugeValue, 42},
		{"tollgate_inflight_requests", map[string]string{}, gaugeValue, 2},
		{"tollgate_config_reloads_total", map[string]string{"result": "ok"}, counterValue, 2},
		{"tollgate_config_reloads_total", map[string]string{"result": "error"}, counterValue, 1},
	}
	for _, c := range checks {
		t.Run(c.name+labelString(c.labels), func(t *testing.T) {
			if got := c.get(mustSeries(t, fams, c.name, c.labels)); got != c.want {
				t.Errorf("= %v, want %v", got, c.want)
			}
		})
	}
	// The runtime and process collectors are registered too.
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if fams[name] == nil {
			t.Errorf("%s missing from scrape", name)
		}
	}
}

func gaugeValue(m *dto.Metric) float64   { return m.GetGauge().GetValue() }
func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

func labelString(l map[string]string) string {
	s := ""
	for k, v := range l {
		s += "/" + k + "=" + v
	}
	return s
}

func TestConcurrentObserveCountsEveryRequest(t *testing.T) {
	m := New()
	const goroutines, perGoroutine = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Resolving the route concurrently is part of the contract too.
			r := m.Route("r", "s")
			status := 200 + g%2 // two series, filled lazily by racing goroutines
			for range perGoroutine {
				r.Observe("GET", status, time.Microsecond, time.Microsecond)
			}
		}()
	}
	wg.Wait()
	fams := scrape(t, m)
	for _, status := range []string{"200", "201"} {
		got := mustSeries(t, fams, "tollgate_requests_total",
			map[string]string{"route": "r", "service": "s", "method": "GET", "status": status}).GetCounter().GetValue()
		if want := float64(goroutines / 2 * perGoroutine); got != want {
			t.Errorf("requests{status=%s} = %v, want %v", status, got, want)
		}
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := New()
	r := m.Route("r", "s")
	methods := []string{"GET", "POST", "BREW"}
	statuses := []int{200, 404, 502}
	// Warm-up fills the counter cache.
	for _, meth := range methods {
		for _, st := range statuses {
			r.Observe(meth, st, time.Millisecond, time.Millisecond)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r.Observe(methods[i%len(methods)], statuses[i%len(statuses)], time.Millisecond, time.Millisecond)
		r.RateLimited()
		i++
	})
	if allocs != 0 {
		t.Fatalf("Observe allocates %v times per call after warm-up", allocs)
	}
	// The fast path is the cache, not luck of the client library.
	if class := r.counters[methodPOST][(404-minStatus)/100].Load(); class == nil || class[404%100].Load() == nil {
		t.Fatal("counter for POST 404 was not cached")
	}
}

func BenchmarkObserve(b *testing.B) {
	m := New()
	r := m.Route("users-api", "users")
	r.Observe("GET", 200, time.Millisecond, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe("GET", 200, 1500*time.Microsecond, time.Millisecond)
		}
	})
}

// BenchmarkWithLabelValues is the uncached path Observe avoids, for comparison.
func BenchmarkWithLabelValues(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.requests.WithLabelValues("users-api", "users", "GET", "200").Inc()
			m.duration.WithLabelValues("users-api", "users").Observe(0.0015)
			m.upstream.WithLabelValues("users").Observe(0.001)
		}
	})
}

func TestPerRegistryRegistersOncePerRegistry(t *testing.T) {
	made := 0
	p := NewPerRegistry(func(reg *prometheus.Registry) prometheus.Counter {
		made++
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_per_registry_total", Help: "t"})
		if reg != nil {
			reg.MustRegister(c) // a second registration in one registry would panic
		}
		return c
	})
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	if p.Get(a) != p.Get(a) || p.Get(a) == p.Get(b) || made != 2 {
		t.Errorf("made %d values for two registries", made)
	}
	if p.Get(nil) == p.Get(nil) {
		t.Error("a nil registry shares one value")
	}
}
