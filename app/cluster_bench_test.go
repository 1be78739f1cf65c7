package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth" // the live route of BenchmarkLargeConfigSync
)

// BenchmarkPropagation times a change made through the admin API until
// each of three data planes (in this process, over loopback) serves it:
// from the POST to each engine's version moving. Run with
// go test -run '^$' -bench Propagation -benchtime 300x ./app
func BenchmarkPropagation(b *testing.B) {
	stores := map[string]func(b *testing.B) string{
		"memory":   func(*testing.B) string { return "memory://" },
		"sqlite":   func(*testing.B) string { return "sqlite://cp.db" },
		"postgres": benchPostgres,
	}
	for _, name := range []string{"memory", "sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			cp := startControlPlane(b, dir, cpConfig(stores[name](b), "127.0.0.1:0", mockRouteFile(100)))
			var dps []*DataPlane
			for range 3 {
				dps = append(dps, startDataPlane(b, b.TempDir(), dpConfig(cp.ClusterURL(), "cache", "")))
			}
			for _, dp := range dps {
				waitFor(b, func() bool { return dp.Version() == cp.Version() })
			}
			api := "http://" + cp.AdminAddr() + "/api/routes"
			client := &http.Client{}
			// samples: from the POST to a data plane serving the change;
			// posts: the admin API's answer; pushes: from that answer on.
			var samples, posts, pushes []time.Duration
			b.ResetTimer()
			for i := range b.N {
				body := fmt.Sprintf(`{"name":"bench-%06d","paths":["/bench/%d"],"mock":{"body":"ok"}}`, i, i)
				req, _ := http.NewRequest(http.MethodPost, api, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer adm")
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					b.Fatalf("POST: %d", resp.StatusCode)
				}
				answered := time.Now()
				posts = append(posts, answered.Sub(start))
				want := cp.Version()
				pending := slices.Clone(dps)
				for len(pending) > 0 {
					pending = slices.DeleteFunc(pending, func(dp *DataPlane) bool {
						if dp.Version() < want {
							return false
						}
						samples = append(samples, time.Since(start))
						pushes = append(pushes, time.Since(answered))
						return true
					})
					if time.Since(start) > 5*time.Second {
						b.Fatalf("version %d not served within 5s", want)
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.StopTimer()
			reportPercentiles(b, "", samples)
			reportPercentiles(b, "api-", posts)
			reportPercentiles(b, "push-", pushes)
		})
	}
}

// BenchmarkLargeConfigSync gives a data plane that serves live traffic
// (from its cache, with a small configuration) 10,000 routes and 100,000
// consumers from a fresh control plane, and compares the latency of its
// live requests before, during and after the sync. Then it times a
// one-route change and measures what travelled for it. Run with
// go test -run '^$' -bench LargeConfigSync -benchtime 1x ./app
func BenchmarkLargeConfigSync(b *testing.B) {
	const routes, consumers = 10_000, 100_000
	cacheDir := filepath.Join(b.TempDir(), "cache")
	live := `routes:
  - {name: live, paths: [/live], mock: {body: live}, policies: {key-auth: {}}}
consumers:
  - {name: c0000000, credentials: {key-auth: [{key: key-0000000}]}}
`
	// A first control plane gives the data plane its cache: the small
	// configuration it serves live traffic with.
	small := startControlPlane(b, b.TempDir(), cpConfig("memory://", "127.0.0.1:0", live))
	for i := range 3 { // versions the large control plane will not have: its own start at 1
		adminPost(b, "http://"+small.AdminAddr()+"/api/routes", fmt.Sprintf(`{"name":"small-%d","paths":["/small-%d"],"mock":{}}`, i, i))
	}
	dp := startDataPlane(b, b.TempDir(), dpConfig(small.ClusterURL(), cacheDir, ""))
	waitFor(b, func() bool { return dp.Version() == small.Version() })
	waitFor(b, func() bool {
		return strings.Contains(readFile(filepath.Join(cacheDir, "deltas.ndjson")), "small-2") || strings.Contains(readFile(filepath.Join(cacheDir, "config.json")), "small-2")
	})
	dp.Shutdown(context.Background())
	small.Shutdown(context.Background())

	start := time.Now()
	large := startLargeControlPlane(b, routes, consumers)
	b.Logf("control plane with %d routes and %d consumers up in %s (version %d)", routes, consumers, time.Since(start).Round(time.Millisecond), large.Version())

	// The data plane reaches the control plane through a gate, closed until
	// the baseline is measured.
	gate := newGate(b, large.ClusterAddr())
	dp = startDataPlane(b, b.TempDir(), dpConfig("http://"+gate.addr(), cacheDir, ""))
	if dp.Version() != small.Version() || large.Version() == small.Version() {
		b.Fatalf("the data plane serves version %d from its cache, the small control plane had %d, the large one %d", dp.Version(), small.Version(), large.Version())
	}
	load := startLoad(b, "http://"+dp.ProxyAddr()+"/live", "key-0000000", 2)
	time.Sleep(2 * time.Second)
	baselineEnd := time.Now()
	gate.open()
	want := large.Version()
	waitForWithin(b, 2*time.Minute, func() bool { return dp.Version() == want })
	synced := time.Now()
	b.Logf("synced in %s", synced.Sub(baselineEnd).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	afterEnd := time.Now()
	samples, errs := load.stop()
	if errs > 0 {
		b.Errorf("%d live requests failed", errs)
	}
	waitFor(b, func() bool { return fileSize(filepath.Join(cacheDir, "config.json")) > 1<<20 })
	snapshot, _ := os.Stat(filepath.Join(cacheDir, "config.json"))

	window := func(name string, from, to time.Time) {
		var d []time.Duration
		for _, s := range samples {
			if !s.at.Before(from) && s.at.Before(to) {
				d = append(d, s.took)
			}
		}
		slices.Sort(d)
		if len(d) == 0 {
			b.Logf("%s: no requests", name)
			return
		}
		b.Logf("%-8s %6d requests  p50 %7s  p99 %7s  max %7s", name, len(d),
			d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	window("baseline", time.Time{}, baselineEnd)
	window("sync", baselineEnd, synced)
	window("after", synced, afterEnd)
	b.ReportMetric(synced.Sub(baselineEnd).Seconds(), "sync-s")
	b.ReportMetric(float64(snapshot.Size())/(1<<20), "snapshot-MiB")

	// A one-route change: how long it takes, and what travels.
	journal := filepath.Join(cacheDir, "deltas.ndjson")
	before := fileSize(journal)
	t0 := time.Now()
	code, body := adminPost(b, "http://"+large.AdminAddr()+"/api/routes", `{"name":"one-more","paths":["/one-more"],"mock":{}}`)
	if code != 201 {
		b.Fatalf("POST: %d %s", code, body)
	}
	posted := time.Since(t0)
	want = large.Version()
	waitFor(b, func() bool { return dp.Version() == want })
	b.Logf("one-route change: admin API answered in %s, data plane served it after %s", posted.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	waitFor(b, func() bool { return fileSize(journal) > before })
	b.Logf("one-route change: %d bytes travelled (the snapshot: %d)", fileSize(journal)-before, snapshot.Size())
	b.ReportMetric(float64(fileSize(journal)-before), "delta-bytes")
}

// BenchmarkLargeConfigPropagation is BenchmarkPropagation at the size of
// BenchmarkLargeConfigSync: 10,000 routes and 100,000 consumers, three data
// planes. Each iteration creates one route through the admin API and waits
// until every data plane serves it. Run with
// go test -run '^$' -bench LargeConfigPropagation -benchtime 20x ./app
func BenchmarkLargeConfigPropagation(b *testing.B) {
	large := startLargeControlPlane(b, 10_000, 100_000)
	var dps []*DataPlane
	for range 3 {
		dps = append(dps, startDataPlane(b, b.TempDir(), dpConfig(large.ClusterURL(), "", "")))
	}
	for _, dp := range dps {
		waitForWithin(b, 2*time.Minute, func() bool { return dp.Version() == large.Version() })
	}
	api := "http://" + large.AdminAddr() + "/api/routes"
	var samples, posts []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		code, body := adminPost(b, api, fmt.Sprintf(`{"name":"bench-%06d","paths":["/bench/%d"],"mock":{"body":"ok"}}`, i, i))
		if code != 201 {
			b.Fatalf("POST: %d %s", code, body)
		}
		posts = append(posts, time.Since(start))
		want := large.Version()
		for _, dp := range dps {
			waitForWithin(b, 10*time.Second, func() bool { return dp.Version() >= want })
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, "", samples)
	reportPercentiles(b, "api-", posts)
}

// startLargeControlPlane starts a control plane (memory store) whose file
// has the given numbers of routes (over 10 services) and consumers, plus
// the live route and its consumer.
func startLargeControlPlane(b *testing.B, routes, consumers int) *ControlPlane {
	cfg := &config.Config{Store: "memory://"}
	cfg.Server.AdminListen = "127.0.0.1:0"
	cfg.Admin.Tokens = []config.AdminToken{{Name: "ops", Token: "adm", Role: "admin"}}
	cfg.Cluster = config.Cluster{Listen: "127.0.0.1:0", Token: clusterToken}
	for i := range 10 {
		cfg.Services = append(cfg.Services, config.Service{Name: fmt.Sprintf("svc%d", i),
			Targets: []config.Target{{URL: fmt.Sprintf("http://127.0.0.1:%d", 1+i)}}}) // never called
	}
	cfg.Routes = append(cfg.Routes, config.Route{Name: "live", Paths: []string{"/live"}, Mock: &config.Mock{Body: "live"},
		Policies: config.Policies{"key-auth": map[string]any{}}})
	for i := range routes {
		cfg.Routes = append(cfg.Routes, config.Route{Name: fmt.Sprintf("route-%05d", i), Methods: []string{"GET", "POST"},
			Paths: []string{fmt.Sprintf("/api/v1/resource-%05d", i)}, Service: fmt.Sprintf("svc%d", i%10), StripPath: i%2 == 0})
	}
	for i := range consumers {
		cfg.Consumers = append(cfg.Consumers, config.Consumer{Name: fmt.Sprintf("c%07d", i), Groups: []string{"partners"},
			Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: fmt.Sprintf("key-%07d", i)}}}})
	}
	cfg.ApplyDefaults()
	c, err := NewControlPlane(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Shutdown(context.Background()) })
	return c
}

func adminPost(b testing.TB, url, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func mockRouteFile(n int) string {
	var s strings.Builder
	s.WriteString("routes:\n")
	for i := range n {
		fmt.Fprintf(&s, "  - {name: r%04d, paths: [/r%04d], mock: {body: r%04d}}\n", i, i, i)
	}
	return s.String()
}

// reportPercentiles reports p50, p99 and max of samples, in ms.
func reportPercentiles(b *testing.B, prefix string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(samples[len(samples)/2]), prefix+"p50-ms")
	b.ReportMetric(ms(samples[len(samples)*99/100]), prefix+"p99-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), prefix+"max-ms")
}

func waitFor(b testing.TB, cond func() bool) { waitForWithin(b, 10*time.Second, cond) }

func waitForWithin(b testing.TB, within time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not within %s", within)
		}
		time.Sleep(time.Millisecond)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func fileSize(path string) int64 {
	s, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return s.Size()
}

// benchPostgres returns the URL of a fresh schema of the test database,
// dropped at the end, or skips.
func benchPostgres(b *testing.B) string {
	base := os.Getenv("TOLLGATE_TEST_PG")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		b.Skipf("PostgreSQL does not answer: %v", err)
	}
	schema := "tollgate_bench_" + randomHex(6)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	p := make([]byte, n)
	rand.Read(p)
	return hex.EncodeToString(p)
}

// gate forwards TCP connections to a target once opened; until then it
// closes them at once, as a control plane that is down.
type gate struct {
	ln     net.Listener
	target string
	opened atomic.Bool
}

func newGate(b *testing.B, target string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := &gate{ln: ln, target: target}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.opened.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", g.target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }
func (g *gate) open()        { g.opened.Store(true) }

// load sends requests one after the other from a few workers and records
// when each started and how long it took.
type load struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
	errs    int
}

type sample struct {
	at   time.Time
	took time.Duration
}

func startLoad(b *testing.B, url, key string, workers int) *load {
	l := &load{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopped.Load() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("apikey", key)
				start := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				l.mu.Lock()
				l.samples = append(l.samples, sample{start, took})
				if !ok {
					l.errs++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) stop() ([]sample, int) {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.samples, l.errs
}
