package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

// startHTTP3 serves handler over HTTP/3 with a certificate for h3.test and
// returns its address and a client trusting it.
func startHTTP3(t *testing.T, cfg *config.Server, handler fasthttp.RequestHandler) (string, *http.Client) {
	t.Helper()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c, k := ca.Issue(t, "h3", []string{"h3.test"}, false)
	certs, err := LoadCertificates(&config.TLS{Certificates: []config.Certificate{{
		Cert: testutil.WriteFile(t, dir, "c.pem", c), Key: testutil.WriteFile(t, dir, "k.pem", k),
	}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	s := NewHTTP3(cfg, handler, certs.ServerConfig())
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "h3.test"}}
	t.Cleanup(func() {
		tr.Close()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s.Addr().String(), &http.Client{Transport: tr}
}

// The engine sees an HTTP/3 request as it sees any other: its protocol, the
// TLS state, the client address as a TCP address (what the engine reads),
// and a body that streams in both directions while the request is open.
func TestHTTP3RequestView(t *testing.T) {
	addr, client := startHTTP3(t, &config.Server{}, func(ctx *fasthttp.RequestCtx) {
		ra, _ := ctx.RemoteAddr().(*net.TCPAddr)
		ctx.Response.Header.Set("X-Seen", fmt.Sprintf("%s %s tls=%t alpn=%s peer=%v host=%s",
			ctx.Request.Header.Protocol(), ctx.Request.Header.RequestURI(), ctx.IsTLS(),
			ctx.TLSConnectionState().NegotiatedProtocol, ra != nil && ra.IP.IsLoopback(), ctx.Host()))
		// Echo: each piece of the request body goes back as it arrives.
		ctx.SetBodyStream(ctx.RequestBodyStream(), -1)
	})

	// A body that did not stream would hang: the deadline turns that into
	// a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, send := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+addr+"/echo?q=1", body)
	req.Host = "api.h3.test"
	go send.Write([]byte("ping 1"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := "HTTP/3.0 /echo?q=1 tls=true alpn=h3 peer=true host=api.h3.test"
	if resp.ProtoMajor != 3 || resp.Header.Get("X-Seen") != want {
		t.Fatalf("%s, handler saw %q, want %q", resp.Proto, resp.Header.Get("X-Seen"), want)
	}
	buf := make([]byte, 16)
	for i := 1; i <= 2; i++ {
		n, err := io.ReadAtLeast(resp.Body, buf, 6)
		if got := string(buf[:n]); err != nil || got != fmt.Sprintf("ping %d", i) {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
		if i == 1 {
			go send.Write([]byte("ping 2"))
		}
	}
	send.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Errorf("after the request body ended: %q %v", rest, err)
	}
}

func TestHTTP3HeaderLimit(t *testing.T) {
	cfg := &config.Server{Limits: config.Limits{MaxHeaderBytes: 1024}}
	addr, client := startHTTP3(t, cfg, func(ctx *fasthttp.RequestCtx) {})
	req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 2048))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 KiB of headers over a 1 KiB limit: %d", resp.StatusCode)
	}
	req.Header.Set("X-Big", "small")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("small header: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestHTTP3ListenOnTakenPort(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := NewHTTP3(&config.Server{}, func(*fasthttp.RequestCtx) {}, &tls.Config{})
	if err := s.Listen(taken.LocalAddr().String()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("bind on a taken UDP port: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown of a server that never listened: %v", err)
	}
}
