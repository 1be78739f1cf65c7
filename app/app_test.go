package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testutil"
)

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	// Written beside and renamed over, as editors do, so the watcher never
	// sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func gatewayConfig(accessLog, backend, routePath string) string {
	return fmt.Sprintf(`server:
  proxy_listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
logging: {access_log: %q}
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: main
    paths: [%q]
    service: be
`, accessLog, backend, routePath)
}

func startApp(t *testing.T, path string) *App {
	t.Helper()
	a, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestFileChangeReloadsAndInvalidFileIsRefused(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/v1"))
	a := startApp(t, path)
	proxy := "http://" + a.ProxyAddr()

	if s := status(t, proxy+"/v1/x"); s != 200 {
		t.Fatalf("/v1: %d", s)
	}
	writeConfig(t, path, gatewayConfig("off", be.URL, "/v2"))
	testutil.Eventually(t, 5*time.Second, "new route after the file changed", func() bool {
		return status(t, proxy+"/v2/x") == 200
	})
	if s := status(t, proxy+"/v1/x"); s != 404 {
		t.Errorf("old route still served: %d", s)
	}
	if a.Version() != 2 {
		t.Errorf("version %d, want 2", a.Version())
	}

	writeConfig(t, path, gatewayConfig("off", be.URL, "/v3")+"  - name: broken\n    paths: [\"/b\"]\n    service: nope\n")
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "tollgate.yaml:") {
		t.Fatalf("invalid file: reload error %v, want one naming the file", err)
	}
	if s := status(t, proxy+"/v2/x"); s != 200 {
		t.Errorf("running configuration lost after an invalid file: %d", s)
	}
	if a.Version() != 2 {
		t.Errorf("version %d after a refused file", a.Version())
	}
	metrics := get(t, "http://"+a.AdminAddr()+"/metrics")
	for _, want := range []string{`tollgate_config_reloads_total{result="error"}`, "tollgate_config_version 2"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	}))
	defer be.Close()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/"))
	a, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	proxy := "http://" + a.ProxyAddr()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(proxy + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- a.Shutdown(context.Background()) }()
	// New connections are refused once draining has begun.
	testutil.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := (&http.Client{Timeout: time.Second}).Get(proxy + "/new")
		if err == nil {
			c.Body.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if r := <-got; r != "200 finished" {
		t.Errorf("in-flight request: %s", r)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestAccessLogAndMetrics(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer be.Close()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, gatewayConfig(logPath, be.URL, "/api"))
	a := startApp(t, path)
	proxy := "http://" + a.ProxyAddr()

	req, _ := http.NewRequest("GET", proxy+"/api/items?x=1", nil)
	req.Header.Set("X-Request-ID", "trace-me")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if s := status(t, proxy+"/nowhere"); s != 404 {
		t.Fatalf("no route: %d", s)
	}

	var lines []map[string]any
	testutil.Eventually(t, 5*time.Second, "two access log lines", func() bool {
		f, err := os.Open(logPath)
		if err != nil {
			return false
		}
		defer f.Close()
		lines = lines[:0]
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("access log line is not JSON: %q", sc.Text())
			}
			lines = append(lines, m)
		}
		return len(lines) == 2
	})
	first := lines[0]
	want := map[string]any{"request_id": "trace-me", "route": "main", "service": "be", "method": "GET",
		"path": "/api/items", "status": float64(200), "bytes": float64(5), "client_ip": "127.0.0.1"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("access log %s = %v, want %v", k, first[k], v)
		}
	}
	for _, k := range []string{"time", "upstream_ms", "total_ms", "consumer"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access log lacks %s", k)
		}
	}
	if lines[1]["status"] != float64(404) || lines[1]["route"] != "" {
		t.Errorf("no-route line: %v", lines[1])
	}

	metrics := get(t, "http://"+a.AdminAddr()+"/metrics")
	for _, want := range []string{
		`tollgate_requests_total{method="GET",route="main",service="be",status="200"} 1`,
		`tollgate_requests_total{method="GET",route="",service="",status="404"} 1`,
		`tollgate_request_duration_seconds_count{route="main",service="be"} 1`,
		`tollgate_upstream_duration_seconds_count{service="be"} 1`,
		`tollgate_upstream_health{service="be",target="` + be.URL + `"} 1`,
		"tollgate_config_version 1",
		"tollgate_inflight_requests 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if h := get(t, "http://"+a.AdminAddr()+"/healthz"); !strings.Contains(h, `"status":"ok"`) {
		t.Errorf("healthz: %s", h)
	}
}

func TestTLSListener(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer be.Close()
	a, ca := startTLSApp(t, be.URL)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), ServerName: "api.example.com",
	}}}
	resp, err := client.Get("https://" + a.TLSAddr() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "https" {
		t.Errorf("over TLS: %d %q (upstream X-Forwarded-Proto)", resp.StatusCode, b)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com", MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", a.TLSAddr(), old); err == nil {
		conn.Close()
		t.Error("TLS 1.1 accepted")
	}
}

// startTLSApp runs the gateway with a TLS listener whose certificate, for
// api.example.com, comes from the returned CA. The certificate paths in the
// file are relative: they start from the configuration's directory.
func startTLSApp(t *testing.T, backend string) (*App, *testutil.CA) {
	t.Helper()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c, k := ca.Issue(t, "api", []string{"api.example.com"}, false)
	testutil.WriteFile(t, dir, "cert.pem", c)
	testutil.WriteFile(t, dir, "key.pem", k)
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, strings.Replace(gatewayConfig("off", backend, "/"), "server:\n",
		"server:\n  tls: {listen: \"127.0.0.1:0\", certificates: [{cert: cert.pem, key: key.pem}]}\n", 1))
	return startApp(t, path), ca
}

// SIGHUP (Reload) applies the file again even when it is unchanged, for
// the files it names: a changed OpenAPI document's example is served.
func TestReloadRereadsNamedFiles(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "api.yaml")
	writeSpec := func(v int) {
		writeConfig(t, spec, fmt.Sprintf(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x:
    get:
      operationId: getX
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {v: %d}
`, v))
	}
	writeSpec(1)
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, fmt.Sprintf(`server:
  proxy_listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
logging: {access_log: "off"}
routes:
  - name: mock
    paths: ["=/x"]
    mock: {openapi: %q, operation: getX}
`, spec))
	a := startApp(t, path)
	if got := get(t, "http://"+a.ProxyAddr()+"/x"); !strings.Contains(got, `"v":1`) {
		t.Fatalf("first answer %q", got)
	}
	writeSpec(2)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(t, "http://"+a.ProxyAddr()+"/x"); !strings.Contains(got, `"v":2`) {
		t.Errorf("after SIGHUP with a changed document: %q", got)
	}
}
