package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/tollgate/tollgate/observe/metrics"
)

// gateway is an engine behind a real listener on a loopback port.
type gateway struct {
	*Engine
	url  string
	addr string
}

func startGateway(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	return startGatewayWith(t, cfg, proxy.NewTransport())
}

func startGatewayWith(t testing.TB, cfg *config.Config, tr *proxy.Transport) *gateway {
	t.Helper()
	cfg.ApplyDefaults()
	e := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Transport: tr})
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
	})
	addr := srv.Addr().String()
	return &gateway{Engine: e, url: "http://" + addr, addr: addr}
}

// oneRoute is a configuration with one service on targets and one route.
func oneRoute(route config.Route, targets ...string) *config.Config {
	svc := config.Service{Name: "svc"}
	for _, u := range targets {
		svc.Targets = append(svc.Targets, config.Target{URL: u})
	}
	route.Service = "svc"
	if route.Name == "" {
		route.Name = "r"
	}
	return &config.Config{Services: []config.Service{svc}, Routes: []config.Route{route}}
}

type gatewayError struct {
	Error struct {
		Status    int    `json:"status"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func decodeError(t *testing.T, resp *http.Response) gatewayError {
	t.Helper()
	var ge gatewayError
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &ge); err != nil {
		t.Fatalf("gateway error is not JSON: %q", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ge.Error.Status != resp.StatusCode {
		t.Errorf("body status %d, response status %d", ge.Error.Status, resp.StatusCode)
	}
	if ge.Error.RequestID == "" || ge.Error.RequestID != resp.Header.Get("X-Request-ID") {
		t.Errorf("request_id %q, X-Request-ID header %q", ge.Error.RequestID, resp.Header.Get("X-Request-ID"))
	}
	return ge
}

// echoBackend answers with what it received as JSON.
type echoed struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
}

func echoBackend(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getEcho(t *testing.T, req *http.Request) (*http.Response, echoed) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	return resp, e
}

func TestProxyForwardsRequestAndStandardHeaders(t *testing.T) {
	be := echoBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/api"}, StripPath: true}, be.URL))

	req, _ := http.NewRequest("POST", gw.url+"/api/users//5/./x/../profile?b=2&a=%20", strings.NewReader("payload"))
	req.Header.Set("X-Consumer-Name", "admin")
	req.Header.Set("X-Consumer-Groups", "root")
	req.Header.Set("X-Authenticated-Userid", "42")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Host", "spoofed.example")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Custom", "kept")
	resp, got := getEcho(t, req)

	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got.Method != "POST" || got.Body != "payload" {
		t.Errorf("method %q body %q", got.Method, got.Body)
	}
	if got.URI != "/users/5/profile?b=2&a=%20" {
		t.Errorf("upstream URI = %q", got.URI)
	}
	h := http.Header(got.Header)
	for _, name := range []string{"X-Consumer-Name", "X-Consumer-Groups", "X-Authenticated-Userid", "Forwarded", "X-Hop", "Keep-Alive", "Proxy-Authorization"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s forwarded upstream: %q", name, v)
		}
	}
	checks := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  gw.addr,
		"X-Custom":          "kept",
	}
	for name, want := range checks {
		if v := h.Get(name); v != want {
			t.Errorf("upstream %s = %q, want %q", name, v, want)
		}
	}
	id := h.Get("X-Request-Id")
	if len(id) != 36 || resp.Header.Get("X-Request-ID") != id {
		t.Errorf("request id upstream %q, in response %q", id, resp.Header.Get("X-Request-ID"))
	}
	if tp := h.Get("Traceparent"); !validTraceparent([]byte(tp)) {
		t.Errorf("traceparent %q", tp)
	}
	if u, _ := http.NewRequest("GET", be.URL, nil); got.Host != u.Host {
		t.Errorf("upstream Host %q, want the target's %q", got.Host, u.Host)
	}
}

func TestProxyKeepsClientRequestIDAndTraceparent(t *testing.T) {
	be := echoBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}, PreserveHost: true}, be.URL))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest("GET", gw.url+"/x", nil)
	req.Header.Set("X-Request-ID", "client-id-123")
	req.Header.Set("Traceparent", tp)
	req.Host = "api.example.com"
	resp, got := getEcho(t, req)
	h := http.Header(got.Header)
	if h.Get("X-Request-Id") != "client-id-123" || resp.Header.Get("X-Request-ID") != "client-id-123" {
		t.Errorf("request id not kept: upstream %q response %q", h.Get("X-Request-Id"), resp.Header.Get("X-Request-ID"))
	}
	if h.Get("Traceparent") != tp {
		t.Errorf("traceparent %q", h.Get("Traceparent"))
	}
	if got.Host != "api.example.com" {
		t.Errorf("preserve_host: upstream Host %q", got.Host)
	}

	req.Header.Set("X-Request-ID", "bad id with spaces")
	req.Header.Set("Traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	_, got = getEcho(t, req)
	h = http.Header(got.Header)
	if id := h.Get("X-Request-Id"); len(id) != 36 {
		t.Errorf("invalid client request id was not replaced: %q", id)
	}
	if v := h.Get("Traceparent"); v == req.Header.Get("Traceparent") || !validTraceparent([]byte(v)) {
		t.Errorf("invalid traceparent was not replaced: %q", v)
	}
}

func TestTrustedProxiesForwardedFor(t *testing.T) {
	be := echoBackend(t)
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.TrustedProxies = []string{"127.0.0.0/8", "10.0.0.0/8"}
	gw := startGateway(t, cfg)
	req, _ := http.NewRequest("GET", gw.url+"/", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9, 10.1.2.3")
	req.Header.Set("X-Forwarded-Proto", "https")
	_, got := getEcho(t, req)
	h := http.Header(got.Header)
	if v := h.Get("X-Forwarded-For"); v != "203.0.113.9, 10.1.2.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v := h.Get("X-Real-Ip"); v != "203.0.113.9" {
		t.Errorf("client ip through trusted proxies = %q", v)
	}
	if v := h.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto from a trusted proxy = %q", v)
	}
}

func TestResponseHopByHopStripped(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=1")
		w.Header().Set("X-App", "yes")
		w.Header().Set("Server", "backend/1.0")
		w.WriteHeader(201)
		io.WriteString(w, "created")
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	resp, err := http.Get(gw.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || string(body) != "created" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Secret-Hop") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-App") != "yes" || resp.Header.Get("Server") != "backend/1.0" {
		t.Errorf("end-to-end headers lost: %v", resp.Header)
	}
	if resp.Close {
		t.Errorf("client connection closed although only the upstream named headers in Connection")
	}
}

func TestNoRouteAndMock(t *testing.T) {
	cfg := &config.Config{Routes: []config.Route{{
		Name: "mock", Paths: []string{"=/v0/ping"}, Methods: []string{"GET"},
		Mock: &config.Mock{Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"pong":true}`},
	}}}
	gw := startGateway(t, cfg)
	resp, err := http.Get(gw.url + "/v0/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"pong":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("mock: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, path := range []string{"/v0/ping/x", "/nothing"} {
		resp, err := http.Get(gw.url + path)
		if err != nil {
			t.Fatal(err)
		}
		if ge := decodeError(t, resp); resp.StatusCode != 404 || ge.Error.Code != "no_route" {
			t.Errorf("%s: %d %+v", path, resp.StatusCode, ge)
		}
	}
	resp, err = http.Post(gw.url+"/v0/ping", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 404 || ge.Error.Code != "no_route" {
		t.Errorf("method mismatch: %d %+v", resp.StatusCode, ge)
	}
}

func TestMalformedPathIsRejectedNotForwarded(t *testing.T) {
	var hits atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	for _, target := range []string{"/a%2Fb", "/a%00b", "/a\\b", "/%zz"} {
		status := rawStatus(t, gw.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if status != 400 {
			t.Errorf("%q: status %d, want 400", target, status)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("backend reached %d times by malformed requests", n)
	}
}

// rawStatus sends a raw request and returns the status code of the answer.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading answer to %q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("refused is 502", func(t *testing.T) {
		gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, "http://"+testutil.ClosedPort(t)))
		resp, err := http.Get(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		if ge := decodeError(t, resp); resp.StatusCode != 502 || ge.Error.Code != "upstream_unavailable" {
			t.Errorf("%d %+v", resp.StatusCode, ge)
		}
	})
	t.Run("slow is 504", func(t *testing.T) {
		release := make(chan struct{})
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer be.Close()
		defer close(release)
		cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
		cfg.Services[0].Timeouts.Response = config.Duration(150 * time.Millisecond)
		one := 1
		cfg.Services[0].Retries.Attempts = &one
		gw := startGateway(t, cfg)
		resp, err := http.Get(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		if ge := decodeError(t, resp); resp.StatusCode != 504 || ge.Error.Code != "upstream_timeout" {
			t.Errorf("%d %+v", resp.StatusCode, ge)
		}
	})
	t.Run("reset is 502", func(t *testing.T) {
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
		}))
		defer be.Close()
		gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
		resp, err := http.Get(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		if ge := decodeError(t, resp); resp.StatusCode != 502 || ge.Error.Code != "upstream_unavailable" {
			t.Errorf("%d %+v", resp.StatusCode, ge)
		}
	})
}

func TestRetries(t *testing.T) {
	var okHits, resetHits atomic.Int32
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		okHits.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer good.Close()
	resetter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resetHits.Add(1)
		io.Copy(io.Discard, r.Body)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))
	defer resetter.Close()
	refused := "http://" + testutil.ClosedPort(t)

	t.Run("connect failure retried for any method", func(t *testing.T) {
		gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, refused, good.URL))
		for i := 0; i < 6; i++ {
			resp, err := http.Post(gw.url+"/", "text/plain", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
		}
	})
	t.Run("idempotent request retried on another target after reset", func(t *testing.T) {
		okHits.Store(0)
		resetHits.Store(0)
		cfg := oneRoute(config.Route{Paths: []string{"/"}}, resetter.URL, good.URL)
		gw := startGateway(t, cfg)
		for i := 0; i < 4; i++ {
			resp, err := http.Get(gw.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %d: status %d", i, resp.StatusCode)
			}
		}
		if resetHits.Load() == 0 {
			t.Errorf("the resetting target was never tried; the test proves nothing")
		}
	})
	t.Run("request with a sent body is not retried", func(t *testing.T) {
		okHits.Store(0)
		resetHits.Store(0)
		gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, resetter.URL))
		resp, err := http.Post(gw.url+"/", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
		if n := resetHits.Load(); n != 1 {
			t.Errorf("POST reached the upstream %d times, want exactly 1", n)
		}
	})
}

func TestKeepAliveUpstreamConnectionsArePooled(t *testing.T) {
	var conns atomic.Int32
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1000))
	}))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	for i := 0; i < 50; i++ {
		resp, err := http.Get(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 1000 {
			t.Fatalf("body %d bytes", n)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential requests opened %d upstream connections, want 1", n)
	}
}

func TestServerSentEventsAreFlushedAsTheyCome(t *testing.T) {
	next := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	resp, err := http.Get(gw.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		// The upstream waits for us before sending the next event, so
		// reading an event here proves it was not held back.
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		rd.ReadString('\n')
		next <- struct{}{}
	}
}

func TestLargeUploadIsStreamed(t *testing.T) {
	const chunk = 1 << 20
	gotFirst := make(chan struct{})
	var total atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var once sync.Once
		for {
			n, err := r.Body.Read(buf)
			total.Add(int64(n))
			if total.Load() >= chunk {
				once.Do(func() { close(gotFirst) })
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d", total.Load())
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.Limits.MaxBodyBytes = 64 << 20
	gw := startGateway(t, cfg)

	pr, pw := io.Pipe()
	go func() {
		block := make([]byte, chunk)
		pw.Write(block)
		// The rest is only sent once the upstream has seen the first MiB:
		// a gateway that buffered the whole body would never get there.
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			pw.CloseWithError(fmt.Errorf("upstream never saw the first chunk"))
			return
		}
		for i := 0; i < 15; i++ {
			pw.Write(block)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", gw.url+"/upload", pr)
	req.ContentLength = 16 * chunk
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != fmt.Sprint(16*chunk) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestChunkedUploadAndDownload(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(r.TransferEncoding) == 0 {
			http.Error(w, "expected chunked", 400)
			return
		}
		for i := 0; i < 4; i++ {
			w.Write(body)
			w.(http.Flusher).Flush()
		}
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	req, _ := http.NewRequest("POST", gw.url+"/", io.MultiReader(strings.NewReader("ab"), strings.NewReader("cd")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "abcdabcdabcdabcd" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestHeadRequestKeepsContentLength(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
		if r.Method != "HEAD" {
			w.Write(make([]byte, 1234))
		}
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	for i := 0; i < 3; i++ { // repeated: a HEAD must not leave the connection out of step
		resp, err := http.Head(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != 1234 {
			t.Fatalf("HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
		}
		resp, err = http.Get(gw.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 1234 {
			t.Fatalf("GET after HEAD: %d bytes", n)
		}
	}
}

func TestEdgeLimits(t *testing.T) {
	var hits atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.Limits.MaxHeaderBytes = 4096
	cfg.Server.Limits.MaxBodyBytes = 1000
	cfg.Server.Limits.MaxURIBytes = 2000
	gw := startGateway(t, cfg)
	if s := rawStatus(t, gw.addr, "GET /"+strings.Repeat("u", 3000)+" HTTP/1.1\r\nHost: x\r\n\r\n"); s != 414 {
		t.Errorf("long request target: %d, want 414", s)
	}
	if s := rawStatus(t, gw.addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8000)+"\r\n\r\n"); s != 431 {
		t.Errorf("oversized header: %d, want 431", s)
	}
	if s := rawStatus(t, gw.addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"+strings.Repeat("b", 5000)); s != 413 {
		t.Errorf("declared oversize body: %d, want 413", s)
	}
	if s := rawStatus(t, gw.addr, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"); s != 413 {
		t.Errorf("oversize body announced with Expect: 100-continue: %d, want 413 without 100", s)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("backend reached %d times", n)
	}
}

func TestMaxConcurrentRequests(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.Limits.MaxConcurrentRequests = 1
	gw := startGateway(t, cfg)
	done := make(chan int)
	go func() {
		resp, err := http.Get(gw.url + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Get(gw.url + "/second")
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 503 || ge.Error.Code != "overloaded" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %+v", resp.StatusCode, ge)
	}
	close(release)
	if s := <-done; s != 200 {
		t.Errorf("first request: %d", s)
	}
}
