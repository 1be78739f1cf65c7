package proxy

import (
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

func newPool(t *testing.T, reg *upstream.Registry, name string, urls ...string) *upstream.Pool {
	t.Helper()
	svc := config.Service{Name: name}
	for _, u := range urls {
		svc.Targets = append(svc.Targets, config.Target{URL: u})
	}
	p, err := reg.NewPool(svc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startTLS(t *testing.T, h2 bool) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	s.EnableHTTP2 = h2
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func writeCA(t *testing.T, dir string, s *httptest.Server) string {
	t.Helper()
	return testutil.WriteFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
}

// The first use of an https target asks it by ALPN; the answer picks the
// HTTP/2 transport or the HTTP/1.1 client, and is remembered.
func TestPickClientFollowsALPN(t *testing.T) {
	h2s, h1s := startTLS(t, true), startTLS(t, false)
	reg := upstream.NewRegistry(upstream.RegistryOptions{})
	defer reg.Close()
	tr := NewTransport()
	tr.BaseDir = t.TempDir()
	writeCA(t, tr.BaseDir, h2s)
	pool := newPool(t, reg, "s", h2s.URL, h1s.URL, "https://"+testutil.ClosedPort(t))
	cs, err := tr.ForService(pool, ServiceOptions{Connect: time.Second, TLS: &config.UpstreamTLS{CA: "ca.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	if cs.H2 != nil || len(cs.H1) != 3 || cs.Dial == nil {
		t.Fatalf("clients: %+v", cs)
	}
	targets := pool.Targets()

	c, h2, err := pickClient(cs.H1, cs.H2, targets[0])
	u := cs.H1[0].Transport.(*tlsUpstream)
	if err != nil || c != nil || h2 != u.h2 || u.proto.Load() != protoHTTP2 {
		t.Errorf("h2 target: client %v, transport %v, err %v", c, h2, err)
	}
	c, h2, err = pickClient(cs.H1, cs.H2, targets[1])
	if err != nil || c != cs.H1[1] || h2 != nil {
		t.Fatalf("HTTP/1.1 target: client %v, transport %v, err %v", c, h2, err)
	}
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI(h1s.URL + "/")
	if err := c.Do(&req, &resp); err != nil || string(resp.Body()) != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 client: %v %q", err, resp.Body())
	}

	_, _, err = pickClient(cs.H1, cs.H2, targets[2])
	if classify(err) != upstream.ConnectFailed {
		t.Errorf("unreachable target: %v classified %v, want a connect failure", err, classify(err))
	}
	if p := cs.H1[2].Transport.(*tlsUpstream).proto.Load(); p != protoUnknown {
		t.Errorf("an unreachable target's protocol is remembered as %d", p)
	}
}

// Clients are shared by services that verify a target alike, and kept apart
// when they do not; the CA file is read from BaseDir and must hold PEM.
func TestForServiceVerificationSettings(t *testing.T) {
	reg := upstream.NewRegistry(upstream.RegistryOptions{})
	defer reg.Close()
	s := startTLS(t, false)
	dir := t.TempDir()
	writeCA(t, dir, s)
	tr := NewTransport()
	tr.BaseDir = dir
	get := func(name string, tc *config.UpstreamTLS) *fasthttp.HostClient {
		t.Helper()
		cs, err := tr.ForService(newPool(t, reg, name, s.URL), ServiceOptions{TLS: tc})
		if err != nil {
			t.Fatal(err)
		}
		return cs.H1[0]
	}
	plain := get("a", nil)
	if get("b", &config.UpstreamTLS{}) != plain {
		t.Error("empty tls settings got a client of their own")
	}
	withCA := get("c", &config.UpstreamTLS{CA: "ca.pem"})
	if withCA == plain || get("d", &config.UpstreamTLS{CA: "ca.pem"}) != withCA {
		t.Error("clients are not keyed by the CA")
	}
	if get("e", &config.UpstreamTLS{CA: "ca.pem", ServerName: "example.com"}) == withCA {
		t.Error("clients are not keyed by the server name")
	}
	if len(tr.tls) != 3 {
		t.Errorf("%d https clients, want 3", len(tr.tls))
	}
	tr.Retain([][]*fasthttp.HostClient{{withCA}}, nil)
	if len(tr.tls) != 1 {
		t.Errorf("after Retain: %d https clients, want 1", len(tr.tls))
	}

	pool := newPool(t, reg, "f", s.URL)
	if _, err := tr.ForService(pool, ServiceOptions{TLS: &config.UpstreamTLS{CA: "missing.pem"}}); err == nil ||
		!strings.HasPrefix(err.Error(), "tls.ca: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
	testutil.WriteFile(t, dir, "junk.pem", []byte("not a certificate"))
	if _, err := tr.ForService(pool, ServiceOptions{TLS: &config.UpstreamTLS{CA: filepath.Join(dir, "junk.pem")}}); err == nil ||
		!strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without a certificate: %v", err)
	}
	if _, err := tr.ForService(newPool(t, reg, "g", "http://127.0.0.1:1", "h2c://127.0.0.1:2"), ServiceOptions{}); err == nil ||
		!strings.Contains(err.Error(), "cannot be mixed") {
		t.Errorf("h2c mixed with http: %v", err)
	}
}
