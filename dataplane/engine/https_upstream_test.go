package engine_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	grpcstatus "google.golang.org/grpc/status"
)

// tlsBackend is an httptest TLS server offering h2 (and HTTP/1.1) by ALPN,
// or only HTTP/1.1, counting the connections it accepted.
type tlsBackend struct {
	*httptest.Server
	conns atomic.Int32
}

func startTLSBackend(t *testing.T, h2 bool, h http.Handler) *tlsBackend {
	t.Helper()
	return startTLSBackendOn(t, nil, h2, h)
}

// startTLSBackendOn serves on ln when given (to come back on an address).
func startTLSBackendOn(t *testing.T, ln net.Listener, h2 bool, h http.Handler) *tlsBackend {
	t.Helper()
	b := &tlsBackend{Server: httptest.NewUnstartedServer(h)}
	if ln != nil {
		b.Listener.Close()
		b.Listener = ln
	}
	b.EnableHTTP2 = h2
	b.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// answer is what echoBackend says: who answered, over which protocol, and
// the request body it read.
type answer struct {
	Name  string `json:"name"`
	Proto string `json:"proto"`
	ALPN  string `json:"alpn"`
	Body  string `json:"body"`
}

// echoBackend answers with an answer and a trailer counting the body bytes.
func echoBackend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Body-Bytes")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer{Name: name, Proto: r.Proto, ALPN: r.TLS.NegotiatedProtocol, Body: string(body)})
		w.Header().Set("X-Body-Bytes", fmt.Sprint(len(body)))
	})
}

// caFile writes the httptest servers' certificate (one for all of them,
// self-signed) as a CA file.
func caFile(t *testing.T, be *httptest.Server) string {
	t.Helper()
	return testutil.WriteFile(t, t.TempDir(), "ca.pem",
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: be.Certificate().Raw}))
}

// h2cClient talks HTTP/2 with prior knowledge to the gateway's clear
// listener, so that trailers can come back.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

func call(t *testing.T, c *http.Client, method, url, body string) (*http.Response, answer) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a answer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
		}
	} else {
		a.Body = string(raw)
	}
	return resp, a
}

// A service whose https targets chose differently by ALPN sends each request
// over what its target chose: HTTP/2 (with trailers back to an HTTP/2
// client) or HTTP/1.1. The connection that asked is the one then used, so
// each target sees exactly one connection; aggregation calls and WebSocket
// tunnels reach such targets too.
func TestHTTPSTargetsSpeakWhatTheyNegotiated(t *testing.T) {
	h2be := startTLSBackend(t, true, echoBackend("h2"))
	h1be := startTLSBackend(t, false, echoBackend("h1"))
	ws := startTLSBackend(t, true, websocket.Handler(func(c *websocket.Conn) {
		var msg string
		for websocket.Message.Receive(c, &msg) == nil {
			websocket.Message.Send(c, "echo "+msg)
		}
	}))
	ca := caFile(t, h2be.Server)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - {name: mixed, targets: [{url: %[1]q}, {url: %[2]q}], tls: {ca: %[4]q}}
  - {name: only-h2, targets: [{url: %[1]q}], tls: {ca: %[4]q}}
  - {name: only-h1, targets: [{url: %[2]q}], tls: {ca: %[4]q}}
  - {name: ws, targets: [{url: %[3]q}], tls: {ca: %[4]q}}
routes:
  - {name: mixed, paths: ["/mixed"], service: mixed}
  - {name: ws, paths: ["/ws"], service: ws}
  - name: both
    paths: ["=/both"]
    aggregate:
      - {key: a, service: only-h2, path: /a}
      - {key: b, service: only-h1, path: /b}
`, h2be.URL, h1be.URL, ws.URL, ca), nil)

	c := h2cClient()
	defer c.CloseIdleConnections()
	seen := map[string]int{}
	for i := range 6 {
		resp, a := call(t, c, "POST", g.URL+"/mixed", fmt.Sprint("ping ", i))
		if resp.StatusCode != 200 || a.Body != fmt.Sprint("ping ", i) {
			t.Fatalf("request %d: %d %+v", i, resp.StatusCode, a)
		}
		seen[a.Name+" "+a.Proto+" "+a.ALPN]++
		if a.Name == "h2" && resp.Trailer.Get("X-Body-Bytes") != "6" {
			t.Errorf("trailers from the h2 target: %v", resp.Trailer)
		}
	}
	if seen["h2 HTTP/2.0 h2"] != 3 || seen["h1 HTTP/1.1 http/1.1"] != 3 {
		t.Errorf("answers by target and protocol: %v", seen)
	}
	if h2be.conns.Load() != 1 || h1be.conns.Load() != 1 {
		t.Errorf("connections: h2 target %d, h1 target %d; want 1 each (the probe's is kept)", h2be.conns.Load(), h1be.conns.Load())
	}

	resp, err := http.Get(g.URL + "/both")
	if err != nil {
		t.Fatal(err)
	}
	var both struct{ A, B answer }
	json.NewDecoder(resp.Body).Decode(&both)
	resp.Body.Close()
	if both.A.Proto != "HTTP/2.0" || both.B.Proto != "HTTP/1.1" {
		t.Errorf("aggregated calls: %d %+v", resp.StatusCode, both)
	}

	conn, err := websocket.Dial("ws://"+strings.TrimPrefix(g.URL, "http://")+"/ws", "", "http://origin.test/")
	if err != nil {
		t.Fatalf("WebSocket through an https target that speaks h2: %v", err)
	}
	defer conn.Close()
	var got string
	if err := websocket.Message.Send(conn, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := websocket.Message.Receive(conn, &got); err != nil || got != "echo hi" {
		t.Errorf("tunnel: %q %v", got, err)
	}
}

// gRPC over TLS (grpcs) passes through like h2c: unary calls, errors carried
// in trailers, server streaming and bidirectional streaming. The target's
// certificate is checked against the service's CA and server_name.
func TestGRPCOverTLSThroughTheGateway(t *testing.T) {
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "grpc.test", []string{"grpc.test"}, false)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}})))
	hs := health.NewServer()
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	go srv.Serve(ln)
	defer srv.Stop()

	caPath := testutil.WriteFile(t, t.TempDir(), "ca.pem", ca.CertPEM)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: grpcs
    targets: [{url: "https://%s"}]
    tls: {ca: %q, server_name: grpc.test}
routes:
  - {name: grpc, paths: ["/"], service: grpcs}
`, ln.Addr(), caPath), nil)

	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(g.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "users"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("unary call: %v %v", resp, err)
	}
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if grpcstatus.Code(err) != codes.NotFound {
		t.Fatalf("error status through the gateway: %v, want NotFound", err)
	}

	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "users"})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := watch.Recv(); err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first streamed message: %v %v", first, err)
	}
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_NOT_SERVING)
	if second, err := watch.Recv(); err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("second streamed message: %v %v", second, err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // each answer arrives before the next question is sent
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"},
		}); err != nil {
			t.Fatal(err)
		}
		got, err := stream.Recv()
		if err != nil {
			t.Fatalf("bidi round %d: %v", i, err)
		}
		var names []string
		for _, s := range got.GetListServicesResponse().GetService() {
			names = append(names, s.Name)
		}
		if !strings.Contains(strings.Join(names, ","), "grpc.health.v1.Health") {
			t.Fatalf("bidi round %d: services %v", i, names)
		}
	}
	stream.CloseSend()
}

// Certificates of https targets are verified: against the system's roots
// unless the service names a CA, for the target's host unless it names
// another; insecure_skip_verify accepts any. Services that verify one target
// differently do not share its connections.
func TestHTTPSTargetsAreVerified(t *testing.T) {
	be := startTLSBackend(t, true, echoBackend("be"))
	ca := caFile(t, be.Server)
	// The httptest certificate is for 127.0.0.1 and example.com.
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - {name: roots, targets: [{url: %[1]q}]}
  - {name: ca, targets: [{url: %[1]q}], tls: {ca: %[2]q}}
  - {name: other-name, targets: [{url: %[1]q}], tls: {ca: %[2]q, server_name: other.test}}
  - {name: right-name, targets: [{url: %[1]q}], tls: {ca: %[2]q, server_name: example.com}}
  - {name: insecure, targets: [{url: %[1]q}], tls: {insecure_skip_verify: true}}
routes:
  - {name: roots, paths: ["/roots"], service: roots}
  - {name: ca, paths: ["/ca"], service: ca}
  - {name: other-name, paths: ["/other-name"], service: other-name}
  - {name: right-name, paths: ["/right-name"], service: right-name}
  - {name: insecure, paths: ["/insecure"], service: insecure}
`, be.URL, ca), nil)

	for path, want := range map[string]int{"/roots": 502, "/ca": 200, "/other-name": 502, "/right-name": 200, "/insecure": 200} {
		resp, a := call(t, http.DefaultClient, "GET", g.URL+path, "")
		if resp.StatusCode != want {
			t.Errorf("%s: %d %+v, want %d", path, resp.StatusCode, a, want)
		}
		if want == 502 && !strings.Contains(a.Body, `"upstream_unavailable"`) {
			t.Errorf("%s: %s", path, a.Body)
		}
	}
}

// A target that restarts speaking the other protocol is followed when the
// gateway reconnects, without failing the client's request.
func TestHTTPSTargetThatChangesProtocolIsFollowed(t *testing.T) {
	be := startTLSBackend(t, false, echoBackend("first"))
	addr := be.Listener.Addr().String()
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: s
    targets: [{url: "https://%s"}]
    tls: {ca: %q}
    retries: {attempts: 3}
routes:
  - {name: r, paths: ["/"], service: s}
`, addr, caFile(t, be.Server)), nil)

	expect := func(name, proto string) {
		t.Helper()
		for i := range 3 {
			resp, a := call(t, http.DefaultClient, "GET", g.URL+"/x", "")
			if resp.StatusCode != 200 || a.Name != name || a.Proto != proto {
				t.Fatalf("request %d: %d %+v, want %s over %s", i, resp.StatusCode, a, name, proto)
			}
		}
	}
	restart := func(h2 bool, name string) {
		t.Helper()
		be.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s again: %v", addr, err)
		}
		be = startTLSBackendOn(t, ln, h2, echoBackend(name))
	}
	expect("first", "HTTP/1.1")
	restart(true, "second")
	expect("second", "HTTP/2.0")
	restart(false, "third")
	expect("third", "HTTP/1.1")
}

// A CA file that cannot be read refuses the configuration (the running one
// stays); tls settings that make no sense are reported where they are.
func TestUpstreamTLSSettingsAreChecked(t *testing.T) {
	be := startTLSBackend(t, false, echoBackend("be"))
	base := gatewaytest.Server + `
services:
  - {name: s, targets: [{url: %q}], tls: {ca: %q}}
routes:
  - {name: r, paths: ["/"], service: s}
`
	g := gatewaytest.Start(t, fmt.Sprintf(base, be.URL, caFile(t, be.Server)), nil)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	if err := os.WriteFile(filepath.Join(g.Dir, "tollgate.yaml"), []byte(fmt.Sprintf(base, be.URL, missing)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.App.Reload(); err == nil || !strings.Contains(err.Error(), "tls.ca") {
		t.Errorf("reload with a missing CA file: %v", err)
	}
	if resp, a := call(t, http.DefaultClient, "GET", g.URL+"/x", ""); resp.StatusCode != 200 {
		t.Errorf("after the refused reload: %d %+v", resp.StatusCode, a)
	}

	_, err := config.Parse("t.yaml", []byte(`services:
  - name: plain
    targets: [{url: "http://127.0.0.1:1"}]
    tls: {server_name: a.test}
  - name: secure
    targets: [{url: "https://127.0.0.1:1"}]
    tls: {ca: ca.pem, insecure_skip_verify: true, server_name: "a.test:443"}
`))
	for _, want := range []string{
		"t.yaml:4:5: tls applies to https targets",
		"t.yaml:7:23: insecure_skip_verify accepts any certificate, so ca would be ignored",
		"t.yaml:7:51: server_name must be a host name",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config errors %v\nwant one starting %q", err, want)
		}
	}
}
