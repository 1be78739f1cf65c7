// Package gatewaytest runs a whole gateway (the app, with its real listeners
// and admin endpoints) from a YAML configuration, for end-to-end tests of
// policies and features. Only the policies the test binary imports are
// known to it (the tollgate command links them all).
package gatewaytest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/app"
)

// Server is a server section with loopback listeners on free ports and no
// access log, to start a test configuration with.
const Server = `server:
  proxy_listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
logging: {access_log: "off"}
`

// Gateway is a running gateway.
type Gateway struct {
	App *app.App
	// URL is the clear proxy listener's base URL, AdminURL the admin one's;
	// TLSURL is set when the configuration has server.tls.
	URL, AdminURL, TLSURL string
	// Dir holds the configuration file; relative file names in it (TLS
	// certificates) start there.
	Dir  string
	path string
}

// Start writes yaml to a file in a fresh directory, with files (name to
// content) beside it, and runs a gateway from it until the test ends.
func Start(t testing.TB, yaml string, files map[string][]byte) *Gateway {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := &Gateway{Dir: dir, path: filepath.Join(dir, "tollgate.yaml")}
	g.write(t, yaml)
	a, err := app.New(app.Options{ConfigPath: g.path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx) //nolint:errcheck // the test is over
	})
	g.App = a
	g.URL = "http://" + a.ProxyAddr()
	g.AdminURL = "http://" + a.AdminAddr()
	if addr := a.TLSAddr(); addr != "" {
		g.TLSURL = "https://" + addr
	}
	return g
}

// Reload replaces the configuration with yaml and applies it at once
// (as SIGHUP does), failing the test when it is refused.
func (g *Gateway) Reload(t testing.TB, yaml string) {
	t.Helper()
	g.write(t, yaml)
	if err := g.App.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

func (g *Gateway) write(t testing.TB, yaml string) {
	t.Helper()
	// Written beside and renamed over, so the file watcher never sees half
	// a file.
	tmp := g.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, g.path); err != nil {
		t.Fatal(err)
	}
}

// Metrics returns the admin listener's Prometheus text.
func (g *Gateway) Metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// MetricValue returns the value of the sample whose line starts with
// series (name and labels exactly as exposed), and whether there is one.
func (g *Gateway) MetricValue(t testing.TB, series string) (string, bool) {
	t.Helper()
	for _, line := range strings.Split(g.Metrics(t), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
