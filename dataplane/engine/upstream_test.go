package engine

import (
	"crypto/tls"
	"crypto/x509"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
)

// namedBackend answers with its name; healthy decides the /healthz status.
type namedBackend struct {
	*httptest.Server
	hits    atomic.Int64
	healthy atomic.Bool
}

func startNamed(t *testing.T, name string) *namedBackend {
	b := &namedBackend{}
	b.healthy.Store(true)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !b.healthy.Load() {
				w.WriteHeader(500)
			}
			return
		}
		b.hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func body(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestActiveHealthCheckTakesTargetOutOfRotation(t *testing.T) {
	a, b := startNamed(t, "a"), startNamed(t, "b")
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, a.URL, b.URL)
	cfg.Services[0].HealthCheck.Active = &config.ActiveHealthCheck{
		Interval: config.Duration(20 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: 1,
	}
	gw := startGateway(t, cfg)
	req, _ := http.NewRequest("GET", gw.url+"/x", nil)

	a.healthy.Store(false)
	// Once the checker has seen a fail, every request goes to b.
	testutil.Eventually(t, 5*time.Second, "a taken out of rotation", func() bool {
		before := a.hits.Load()
		for i := 0; i < 10; i++ {
			body(t, req)
		}
		return a.hits.Load() == before
	})
	for i := 0; i < 20; i++ {
		if s, got := body(t, req); s != 200 || got != "b" {
			t.Fatalf("with a unhealthy: %d %q", s, got)
		}
	}
	a.healthy.Store(true)
	testutil.Eventually(t, 5*time.Second, "a back in rotation", func() bool {
		_, got := body(t, req)
		return got == "a"
	})
}

func TestPassiveHealthAndNoHealthyTarget(t *testing.T) {
	var calls atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(503)
	}))
	defer failing.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, failing.URL)
	cfg.Services[0].HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 3, Cooldown: config.Duration(time.Minute)}
	gw := startGateway(t, cfg)
	req, _ := http.NewRequest("GET", gw.url+"/x", nil)
	for i := 0; i < 3; i++ {
		if s, _ := body(t, req); s != 503 {
			t.Fatalf("request %d: %d, want the upstream's 503 passed through", i, s)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 503 || ge.Error.Code != "no_healthy_upstream" {
		t.Errorf("after 3 failures: %d %+v", resp.StatusCode, ge)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("upstream called %d times, want 3 (the ejected target must not be called)", n)
	}
}

func TestCircuitBreakerOpens(t *testing.T) {
	var calls atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(500)
	}))
	defer failing.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, failing.URL)
	cfg.Services[0].CircuitBreaker = &config.CircuitBreaker{ErrorRatio: 0.5, MinRequests: 5,
		Window: config.Duration(10 * time.Second), OpenFor: config.Duration(time.Minute)}
	gw := startGateway(t, cfg)
	req, _ := http.NewRequest("GET", gw.url+"/x", nil)
	for i := 0; i < 5; i++ {
		body(t, req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 503 || ge.Error.Code != "circuit_open" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("breaker: %d %+v", resp.StatusCode, ge)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("upstream called %d times while the breaker is open, want 5", n)
	}
}

func TestConsistentHashOnHeader(t *testing.T) {
	a, b, c := startNamed(t, "a"), startNamed(t, "b"), startNamed(t, "c")
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, a.URL, b.URL, c.URL)
	cfg.Services[0].Balancing = "consistent_hash"
	cfg.Services[0].HashOn = "header:X-User"
	gw := startGateway(t, cfg)
	seen := map[string]bool{}
	for _, user := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"} {
		req, _ := http.NewRequest("GET", gw.url+"/x", nil)
		req.Header.Set("X-User", user)
		_, first := body(t, req)
		for i := 0; i < 5; i++ {
			if _, got := body(t, req); got != first {
				t.Fatalf("user %s went to %s, then %s", user, first, got)
			}
		}
		seen[first] = true
	}
	if len(seen) < 2 {
		t.Errorf("8 users all hashed to %v", seen)
	}
}

func TestWeightedRoundRobinThroughTheProxy(t *testing.T) {
	a, b := startNamed(t, "a"), startNamed(t, "b")
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, a.URL, b.URL)
	three := 3
	cfg.Services[0].Targets[1].Weight = &three
	gw := startGateway(t, cfg)
	req, _ := http.NewRequest("GET", gw.url+"/x", nil)
	for i := 0; i < 40; i++ {
		body(t, req)
	}
	if a.hits.Load() != 10 || b.hits.Load() != 30 {
		t.Errorf("weights 1:3 over 40 requests gave a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
}

func TestHTTPSUpstream(t *testing.T) {
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.Host)
	}))
	defer be.Close()
	tr := proxy.NewTransport()
	pool := x509.NewCertPool()
	pool.AddCert(be.Certificate())
	tr.TLSConfig = &tls.Config{RootCAs: pool}
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	gw := startGatewayWith(t, cfg, tr)
	for i := 0; i < 3; i++ { // the pooled TLS connection is reused
		req, _ := http.NewRequest("GET", gw.url+"/x", nil)
		s, got := body(t, req)
		if s != 200 || got != "secure "+strings.TrimPrefix(be.URL, "https://") {
			t.Fatalf("https upstream: %d %q", s, got)
		}
	}
}

func TestRetrySendsTheNewTargetsHost(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	}))
	defer echo.Close()
	refused := "http://" + testutil.ClosedPort(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, refused, echo.URL))
	want := strings.TrimPrefix(echo.URL, "http://")
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest("GET", gw.url+"/x", nil)
		if s, got := body(t, req); s != 200 || got != want {
			t.Fatalf("request %d: %d, upstream saw Host %q, want %q", i, s, got, want)
		}
	}
}
