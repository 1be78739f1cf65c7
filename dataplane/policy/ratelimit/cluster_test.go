package ratelimit_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// The accuracy proof: three gateway processes share one Redis and a limit
// of 200 on a route; clients hammer all three at once.
//
// With a window of an hour nothing refills during the test, so the limit
// itself is what must be admitted: exactly (within 1%) in strict mode,
// within the documented bound in batched mode. With a window of 10s (one
// request per 50ms) the clients keep the key saturated for a second, and
// what is admitted must follow limit + elapsed/T.
func TestClusterAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gateway processes; skipped with -short")
	}
	srv := redistest.Start(t)
	bin := buildGateway(t)
	prefix := redistest.Prefix()
	const gateways, limit = 3, 200
	// redis_timeout is long because this test starves the machine it runs
	// on: a timeout would send a gateway to its local limit, and the test
	// would measure that instead (checkClusterWide says so).
	routes := fmt.Sprintf("redis: %q\nroutes:", srv.URL)
	for _, sync := range []string{"strict", "batched"} {
		for _, window := range []string{"1h", "10s"} {
			routes += mockRoute(sync+"-"+window, "/"+sync+"-"+window, fmt.Sprintf(
				"{rate-limit: {limit: %d, window: %s, per: route, sync: %s, key_prefix: %q, redis_timeout: 1s}}",
				limit, window, sync, prefix))
		}
	}
	var procs []*process
	for i := range gateways {
		procs = append(procs, startGateway(t, bin, i, routes+"\n"))
	}
	for _, p := range procs {
		p.waitHealthy(t)
	}
	// The batched limiters must know how many they are before the shares
	// mean anything; each heartbeats every second.
	testutil.Eventually(t, 10*time.Second, "every gateway sees three", func() bool {
		for _, p := range procs {
			if p.metric(t, "tollgate_ratelimit_redis_gateways") != "3" {
				return false
			}
		}
		return true
	})
	// The burst term of the batched bound: 2(N−1)⌈(limit + r)/N⌉, r = 1 for
	// both windows (⌈50ms / emission interval⌉).
	burst := 2 * (gateways - 1) * ((limit + 1 + gateways - 1) / gateways)

	t.Run("strict, no refill", func(t *testing.T) {
		r := hammer(t, procs, "/strict-1h", 400, 0)
		checkClusterWide(t, procs)
		t.Logf("strict, 1h window: %s", r)
		if r.admitted < limit-limit/100 || r.admitted > limit+limit/100 {
			t.Fatalf("strict mode admitted %d, want %d ± 1%%", r.admitted, limit)
		}
	})
	t.Run("batched, no refill", func(t *testing.T) {
		r := hammer(t, procs, "/batched-1h", 400, 0)
		checkClusterWide(t, procs)
		t.Logf("batched, 1h window: %s; documented bound %d", r, limit+burst)
		if r.admitted > limit+burst {
			t.Fatalf("batched mode admitted %d, more than the bound %d", r.admitted, limit+burst)
		}
		// The quotas may hold back part of the limit for a few sync
		// intervals; what is left is admitted once the gateways know.
		admitted := r.admitted
		testutil.Eventually(t, 5*time.Second, "the whole limit admitted", func() bool {
			admitted += hammer(t, procs, "/batched-1h", 1, 0).admitted
			return admitted >= limit
		})
		time.Sleep(200 * time.Millisecond) // a few sync intervals: nothing more may be admitted
		admitted += hammer(t, procs, "/batched-1h", 40, 0).admitted
		t.Logf("batched, 1h window: %d admitted in all", admitted)
		if admitted > limit+burst {
			t.Fatalf("batched mode admitted %d in all, more than the bound %d", admitted, limit+burst)
		}
	})

	const interval = 50 * time.Millisecond // 10s / 200
	t.Run("strict, saturated", func(t *testing.T) {
		r := hammer(t, procs, "/strict-10s", 0, time.Second)
		checkClusterWide(t, procs)
		refill := int(r.elapsed / interval)
		t.Logf("strict, 10s window: %s; limit + elapsed/T = %d", r, limit+refill)
		// The clients' clock brackets Redis's: a request in flight at
		// either end may fall outside, hence a little slack below.
		if r.admitted < limit+refill-limit/100-2 || r.admitted > limit+refill+1 {
			t.Fatalf("strict mode admitted %d in %s, want %d + %d", r.admitted, r.elapsed, limit, refill)
		}
	})
	t.Run("batched, saturated", func(t *testing.T) {
		r := hammer(t, procs, "/batched-10s", 0, time.Second)
		checkClusterWide(t, procs)
		refill := int(r.elapsed/interval) + 1 // the first refill may land before the clients' clock starts
		t.Logf("batched, 10s window: %s; limit + elapsed/T = %d, documented bound %d", r, limit+int(r.elapsed/interval), limit+refill+burst)
		if r.admitted > limit+refill+burst {
			t.Fatalf("batched mode admitted %d in %s, more than the bound %d", r.admitted, r.elapsed, limit+refill+burst)
		}
	})
}

// checkClusterWide fails the test when a gateway decided locally: Redis
// did not answer it in time.
func checkClusterWide(t *testing.T, procs []*process) {
	t.Helper()
	for _, p := range procs {
		if v := p.metric(t, "tollgate_ratelimit_redis_fallback_decisions_total"); v != "0" {
			t.Fatalf("%s made %s decisions without Redis:\n%s", p.name, v, p.logs)
		}
	}
}

// buildGateway builds the tollgate command, with every policy linked in.
func buildGateway(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tollgate")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tollgate: %v\n%s", err, out)
	}
	return bin
}

type process struct {
	name        string
	proxy, admn string // base URLs
	cmd         *exec.Cmd
	logs        *bytes.Buffer
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startGateway runs `tollgate run -c FILE` with routes appended to a
// server section on free ports, stopped with SIGTERM when the test ends.
func startGateway(t *testing.T, bin string, i int, routes string) *process {
	t.Helper()
	proxy, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "tollgate.yaml")
	cfg := fmt.Sprintf("server:\n  proxy_listen: %q\n  admin_listen: %q\nlogging: {access_log: \"off\"}\n", proxy, admin) + routes
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{name: fmt.Sprintf("gateway %d", i), proxy: "http://" + proxy, admn: "http://" + admin, logs: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "run", "-c", file)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v\n%s", p.name, err, p.logs)
			}
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill() //nolint:errcheck // best effort
			t.Errorf("%s did not stop on SIGTERM\n%s", p.name, p.logs)
		}
	})
	return p
}

func (p *process) waitHealthy(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, p.name+" healthy", func() bool {
		resp, err := http.Get(p.admn + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (p *process) metric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get(p.admn + "/metrics")
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body) //nolint:errcheck // a short read shows as a missing series
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return v
		}
	}
	return ""
}

type result struct {
	admitted, total int
	elapsed         time.Duration
	perGateway      []int64 // admitted by each
}

func (r result) String() string {
	return fmt.Sprintf("%d of %d admitted in %s (%.0f requests/s; by gateway %v)",
		r.admitted, r.total, r.elapsed.Round(time.Millisecond), float64(r.total)/r.elapsed.Seconds(), r.perGateway)
}

// hammer sends requests to path on every gateway at once, four clients
// each: perGateway requests per gateway, or as many as fit in d.
func hammer(t *testing.T, procs []*process, path string, perGateway int, d time.Duration) result {
	t.Helper()
	clients := 4
	if perGateway > 0 {
		clients = min(clients, perGateway)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var admitted, total atomic.Int64
	per := make([]atomic.Int64, len(procs))
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i, p := range procs {
		for range clients {
			wg.Go(func() {
				for n := 0; ; n++ {
					if perGateway > 0 && n >= perGateway/clients || d > 0 && time.Now().After(deadline) {
						return
					}
					resp, err := client.Get(p.proxy + path)
					if err != nil {
						t.Errorf("%s: %v", p.name, err)
						return
					}
					resp.Body.Close()
					total.Add(1)
					switch resp.StatusCode {
					case 200:
						admitted.Add(1)
						per[i].Add(1)
					case 429:
					default:
						t.Errorf("%s: status %d", p.name, resp.StatusCode)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	r := result{admitted: int(admitted.Load()), total: int(total.Load()), elapsed: time.Since(start)}
	for i := range per {
		r.perGateway = append(r.perGateway, per[i].Load())
	}
	return r
}
