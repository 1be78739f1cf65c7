package listener

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// listenerKind is one way the proxy listens: clear or TLS, with or without
// HTTP/2 beside HTTP/1.1.
type listenerKind struct {
	name         string
	tls, http2   bool
	certs        *Certificates
	clientConfig *tls.Config
}

func listenerKinds(t *testing.T) []listenerKind {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c, k := ca.Issue(t, "gw", []string{"gw.test"}, false)
	certs, err := LoadCertificates(&config.TLS{Certificates: []config.Certificate{{
		Cert: testutil.WriteFile(t, dir, "c.pem", c), Key: testutil.WriteFile(t, dir, "k.pem", k),
	}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{ServerName: "gw.test", RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}
	return []listenerKind{
		{name: "clear"},
		{name: "clear, h2c beside", http2: true},
		{name: "TLS", tls: true, certs: certs, clientConfig: client},
		{name: "TLS, h2 beside", tls: true, http2: true, certs: certs, clientConfig: client},
	}
}

// start serves handler as the proxy listener of this kind.
func (k listenerKind) start(t *testing.T, cfg *config.Server, handler fasthttp.RequestHandler) string {
	t.Helper()
	s := New(cfg, handler)
	if k.http2 {
		s.EnableHTTP2()
	}
	var err error
	if k.tls {
		protos := []string{"http/1.1"}
		if k.http2 {
			protos = []string{"h2", "http/1.1"}
		}
		err = s.ListenTLS("127.0.0.1:0", k.certs.ServerConfig(protos...))
	} else {
		err = s.Listen("127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	})
	return s.Addr().String()
}

func (k listenerKind) dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if k.tls {
		c, err = tls.Dial("tcp", addr, k.clientConfig)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (k listenerKind) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: k.clientConfig}}
}

func (k listenerKind) url(addr string) string {
	if k.tls {
		return "https://" + addr
	}
	return "http://" + addr
}

// answers reads every answer on c until it is closed, and fails when that
// takes more than 2 seconds.
func answers(t *testing.T, c net.Conn) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	rd := bufio.NewReader(c)
	var got []string
	for {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("no answer, or no close, within 2s (got %q)", got)
			}
			return got
		}
		body, _ := io.ReadAll(resp.Body)
		got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body)))
	}
}

// tlsFlag answers whether the request came over TLS, as policies see it.
func tlsFlag(ctx *fasthttp.RequestCtx) { fmt.Fprintf(ctx, "tls=%v", ctx.IsTLS()) }

// On every kind of listener, a head with a bare LF is answered 400 at once
// and the connection closed, and good requests are still served (and know
// whether they came over TLS).
func TestBareLineEndingOnEveryListener(t *testing.T) {
	cfg := &config.Server{ReadHeaderTimeout: config.Duration(time.Minute)}
	for _, k := range listenerKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			addr := k.start(t, cfg, tlsFlag)
			for _, raw := range []string{
				"GET / HTTP/1.1\nHost: x\r\n\r\n",
				"GET / HTTP/1.1\r\nHost: x\r\n\n",
				"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
			} {
				c := k.dial(t, addr)
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"+raw)
				got := answers(t, c)
				want := fmt.Sprintf(`[200 tls=%v 400 {"error":{"status":400,"code":"bad_request","message":"malformed request: header line not terminated by CRLF","request_id":""}}]`, k.tls)
				if fmt.Sprint(got) != want {
					t.Errorf("%q: %q, want %s", raw, got, want)
				}
			}
		})
	}
}

// A client uploading more than the handler reads gets the handler's early
// answer (not a reset) on every kind of listener: the connection is
// closed gently.
func TestLingeringCloseOnEveryListener(t *testing.T) {
	refuse := func(ctx *fasthttp.RequestCtx) {
		ctx.SetConnectionClose()
		ctx.SetStatusCode(413)
		ctx.WriteString("too large")
	}
	upload := bytes.Repeat([]byte("u"), 4<<20)
	for _, k := range listenerKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			addr := k.start(t, &config.Server{}, refuse)
			client := k.client()
			for try := range 20 {
				resp, err := client.Post(k.url(addr)+"/", "application/octet-stream", bytes.NewReader(upload))
				if err != nil {
					t.Fatalf("try %d: %v", try, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 413 || string(body) != "too large" || err != nil {
					t.Fatalf("try %d: %d %q %v", try, resp.StatusCode, body, err)
				}
			}
		})
	}
}

// A hijacked connection (WebSocket) carries other bytes than HTTP/1.1
// heads: they are not checked.
func TestHijackedConnectionIsNotChecked(t *testing.T) {
	addr := listenerKind{name: "clear"}.start(t, &config.Server{}, func(ctx *fasthttp.RequestCtx) {
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err == nil {
				c.Write(buf)
			}
		})
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	rd := bufio.NewReader(c)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "a\nb\r\r")
	echo := make([]byte, 5)
	if _, err := io.ReadFull(rd, echo); err != nil || string(echo) != "a\nb\r\r" {
		t.Errorf("echo %q, %v", echo, err)
	}
}

// HTTP/2 takes server.limits.max_header_bytes: it is advertised in
// SETTINGS_MAX_HEADER_LIST_SIZE (so Go's client refuses to send a larger
// request), and a larger header list is answered 431 (RFC 9113 section
// 10.5.1), the connection going on. A single field larger than the whole
// limit is not decoded: the connection ends (GOAWAY COMPRESSION_ERROR).
func TestHTTP2MaxHeaderBytes(t *testing.T) {
	cfg := &config.Server{}
	cfg.Limits.MaxHeaderBytes = 4096
	s := New(cfg, echoToken)
	s.EnableHTTP2()
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	addr := s.Addr().String()

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &h2c}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(token string) (string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("X-Token", token)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%s %d %s", resp.Proto, resp.StatusCode, body), nil
	}
	if got, err := get("a"); err != nil || got != "HTTP/2.0 200 token=a" {
		t.Fatalf("small: %q %v", got, err)
	}
	big := strings.Repeat("b", 3500)
	if got, err := get(big); err != nil || got != "HTTP/2.0 200 token="+big {
		t.Errorf("within the limit: %.40q %v", got, err)
	}
	if got, err := get(strings.Repeat("c", 5000)); err == nil || !strings.Contains(err.Error(), "header list larger than peer's advertised limit") {
		t.Errorf("above the limit: %.40q %v, want the client to refuse", got, err)
	}

	// A client that sends it anyway.
	h := dialH2(t, addr)
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if v, ok := sf.Value(http2.SettingMaxHeaderListSize); !ok || v < 4096 || v > 4096+1024 {
				t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d (%v)", v, ok)
			}
			break
		}
	}
	field := strings.Repeat("d", 1600)
	if got := h.get("x-a: "+field, "x-b: "+field, "x-c: "+field); !strings.HasPrefix(got, "431 ") {
		t.Errorf("oversize header list: %.60q, want 431", got)
	}
	if got := h.get("x-token: e"); got != "200 token=e" {
		t.Errorf("after it, on the same connection: %q", got)
	}

	h = dialH2(t, addr)
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("x-token: " + strings.Repeat("f", 5000)), EndStream: true, EndHeaders: true})
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("one field above the limit: %v, want GOAWAY", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeCompression {
				t.Errorf("one field above the limit: GOAWAY %v", ga.ErrCode)
			}
			break
		}
		if hf, ok := f.(*http2.MetaHeadersFrame); ok {
			t.Fatalf("one field above the limit: answered %s", hf.PseudoValue("status"))
		}
	}
}

// Server.OnH2Cutoff hears of every connection the guard cuts off, and why.
func TestOnH2Cutoff(t *testing.T) {
	reasons := make(chan string, 4)
	s := New(&config.Server{}, echoToken)
	s.EnableHTTP2()
	s.OnH2Cutoff = func(reason string) { reasons <- reason }
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })

	h := dialH2(t, s.Addr().String())
	if got := h.get("x-token: a"); got != "200 token=a" {
		t.Fatalf("before: %q", got)
	}
	select {
	case r := <-reasons:
		t.Fatalf("cut off (%s) before any abuse", r)
	default:
	}
	go func() {
		for i := 0; i < 1000; i++ {
			if h.fr.WritePing(false, [8]byte{byte(i)}) != nil {
				return
			}
		}
	}()
	select {
	case r := <-reasons:
		if r != "PING flood" {
			t.Errorf("reason %q, want PING flood", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnH2Cutoff not called for a PING flood")
	}
}
