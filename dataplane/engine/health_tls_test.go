package engine_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// The whole gateway's active health checks of an https target trust what
// the service's tls settings trust, as its proxied requests do.
func TestActiveHealthCheckUsesTheServicesTLS(t *testing.T) {
	var probes atomic.Int64
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			probes.Add(1)
		}
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: be.Certificate().Raw})
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: secure
    targets: [{url: %q}]
    tls: {ca: ca.pem, server_name: example.com}
    health_check:
      active: {path: /healthz, interval: 100ms, healthy_threshold: 1, unhealthy_threshold: 1}
routes:
  - {name: r, paths: ["/"], service: secure}
`, be.URL), map[string][]byte{"ca.pem": ca})
	series := fmt.Sprintf(`tollgate_upstream_health{service="secure",target=%q}`, be.URL)
	// Probes that did not trust the CA would never reach the backend, and
	// would report the target unhealthy (0) at the first interval.
	testutil.Eventually(t, 5*time.Second, "three probes through TLS", func() bool { return probes.Load() >= 3 })
	defer func() {
		if t.Failed() {
			t.Log(g.Metrics(t))
		}
	}()
	testutil.Eventually(t, 5*time.Second, "the target reported healthy", func() bool {
		v, ok := g.MetricValue(t, series)
		return ok && v == "1"
	})
	resp, err := http.Get(g.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("through the gateway: %d", resp.StatusCode)
	}
}
