package upstream_test

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/engine"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/tollgate/tollgate/observe/metrics"
)

// privateBackend is an https server whose certificate only its own CA
// (httptest's) signs, counting the health probes that got through TLS.
type privateBackend struct {
	*httptest.Server
	probes atomic.Int32
}

func startPrivateBackend(t *testing.T) *privateBackend {
	t.Helper()
	b := &privateBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			b.probes.Add(1)
		}
		io.WriteString(w, "private "+r.URL.Path)
	}))
	b.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// healthGateway is an engine wired as the application wires it: probes take
// their TLS configuration from the proxy's transport, health changes go to
// the tollgate_upstream_health gauge.
type healthGateway struct {
	url      string
	metrics  *metrics.Metrics
	registry *upstream.Registry
}

func startHealthGateway(t *testing.T, tr *proxy.Transport, svc config.Service) *healthGateway {
	t.Helper()
	m := metrics.New()
	reg := upstream.NewRegistry(upstream.RegistryOptions{
		Logger:          slog.New(slog.DiscardHandler),
		OnHealthChange:  m.SetUpstreamHealth,
		OnTargetRemoved: m.RemoveUpstream,
		ClientTLS:       tr.ClientTLS,
	})
	e := engine.New(engine.Options{Metrics: m, Logger: slog.New(slog.DiscardHandler), Registry: reg, Transport: tr})
	cfg := &config.Config{
		Services: []config.Service{svc},
		Routes:   []config.Route{{Name: "r", Paths: []string{"/"}, Service: svc.Name}},
	}
	cfg.ApplyDefaults()
	if err := e.Apply(cfg, 1); err != nil {
		t.Fatalf("apply: %v", err)
	}
	srv := listener.New(&cfg.Server, e.ServeHTTP)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		e.Close()
		reg.Close()
	})
	return &healthGateway{url: "http://" + srv.Addr().String(), metrics: m, registry: reg}
}

// health is the tollgate_upstream_health value of target, "" when absent.
func (g *healthGateway) health(t *testing.T, service, target string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	series := `tollgate_upstream_health{service="` + service + `",target="` + target + `"} `
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			return v
		}
	}
	return ""
}

func (g *healthGateway) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(g.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// writePEM writes der as a PEM certificate file in dir.
func writePEM(t *testing.T, dir, name string, der []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func httpsService(url string, tls *config.UpstreamTLS) config.Service {
	return config.Service{
		Name:    "private",
		Targets: []config.Target{{URL: url}},
		TLS:     tls,
		HealthCheck: config.HealthCheck{Active: &config.ActiveHealthCheck{
			Path: "/healthz", Interval: config.Duration(5 * time.Millisecond), Timeout: config.Duration(time.Second),
			HealthyThreshold: 1, UnhealthyThreshold: 1,
		}},
	}
}

// TestActiveChecksVerifyLikeTheProxy: probes of an https target use the
// service's tls settings (CA relative to the configuration's directory,
// server_name, insecure_skip_verify), so a target behind a private CA stays
// healthy and serves traffic, and one the settings do not trust goes
// unhealthy.
func TestActiveChecksVerifyLikeTheProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tls     *config.UpstreamTLS
		healthy bool
	}{
		{"its CA", &config.UpstreamTLS{CA: "certs/ca.pem"}, true},
		{"its CA and a name of its certificate", &config.UpstreamTLS{CA: "certs/ca.pem", ServerName: "example.com"}, true},
		{"insecure_skip_verify", &config.UpstreamTLS{InsecureSkipVerify: true}, true},
		{"another CA", &config.UpstreamTLS{CA: "certs/other.pem"}, false},
		{"its CA and a name not in its certificate", &config.UpstreamTLS{CA: "certs/ca.pem", ServerName: "wrong.test"}, false},
		{"system roots", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := startPrivateBackend(t)
			tr := proxy.NewTransport()
			tr.BaseDir = t.TempDir()
			certs := filepath.Join(tr.BaseDir, "certs")
			if err := os.Mkdir(certs, 0o700); err != nil {
				t.Fatal(err)
			}
			writePEM(t, certs, "ca.pem", be.Certificate().Raw)
			writePEM(t, certs, "other.pem", testutil.NewCA(t).Cert.Raw)

			g := startHealthGateway(t, tr, httpsService(be.URL, tc.tls))
			if tc.healthy {
				// Every probe that reached the handler passed verification;
				// with unhealthy_threshold 1 a single failure would show.
				testutil.Eventually(t, 5*time.Second, "three probes through TLS", func() bool { return be.probes.Load() >= 3 })
				if v := g.health(t, "private", be.URL); v != "1" {
					t.Fatalf("tollgate_upstream_health = %q, want 1", v)
				}
				if s, body := g.get(t, "/x"); s != 200 || body != "private /x" {
					t.Fatalf("GET /x: %d %q", s, body)
				}
				return
			}
			testutil.Eventually(t, 5*time.Second, "target unhealthy", func() bool { return g.health(t, "private", be.URL) == "0" })
			if n := be.probes.Load(); n != 0 {
				t.Fatalf("%d probes got through TLS", n)
			}
			if s, _ := g.get(t, "/x"); s != http.StatusServiceUnavailable {
				t.Fatalf("GET /x with no healthy target: %d, want 503", s)
			}
		})
	}
}

// TestReloadWithTheRightCA: a reload that changes the service's CA restarts
// the checker with the new verification.
func TestReloadWithTheRightCA(t *testing.T) {
	be := startPrivateBackend(t)
	tr := proxy.NewTransport()
	tr.BaseDir = t.TempDir()
	writePEM(t, tr.BaseDir, "ca.pem", be.Certificate().Raw)
	writePEM(t, tr.BaseDir, "other.pem", testutil.NewCA(t).Cert.Raw)
	var healthy atomic.Value
	reg := upstream.NewRegistry(upstream.RegistryOptions{
		ClientTLS:      tr.ClientTLS,
		OnHealthChange: func(_, _ string, up bool) { healthy.Store(up) },
	})
	defer reg.Close()

	wrong, err := reg.NewPool(httpsService(be.URL, &config.UpstreamTLS{CA: "other.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "unhealthy with another CA", func() bool { return healthy.Load() == false })

	right, err := reg.NewPool(httpsService(be.URL, &config.UpstreamTLS{CA: "ca.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	wrong.Release()
	testutil.Eventually(t, 5*time.Second, "healthy with its CA", func() bool { return healthy.Load() == true })

	right.Release()
}

// TestUnreadableProbeCA fails NewPool as the proxy fails the service.
func TestUnreadableProbeCA(t *testing.T) {
	tr := proxy.NewTransport()
	tr.BaseDir = t.TempDir()
	reg := upstream.NewRegistry(upstream.RegistryOptions{ClientTLS: tr.ClientTLS})
	defer reg.Close()
	_, err := reg.NewPool(httpsService("https://127.0.0.1:9", &config.UpstreamTLS{CA: "missing.pem"}))
	if err == nil || !strings.Contains(err.Error(), "tls.ca: ") || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("err = %v, want the tls.ca error", err)
	}
}
