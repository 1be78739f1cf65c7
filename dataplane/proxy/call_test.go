package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

// callTo is a Call to the targets of one service, with a fresh registry.
func callTo(t *testing.T, svc config.Service) *Call {
	t.Helper()
	reg := upstream.NewRegistry(upstream.RegistryOptions{})
	t.Cleanup(reg.Close)
	if svc.Name == "" {
		svc.Name = "s"
	}
	pool, err := reg.NewPool(svc)
	if err != nil {
		t.Fatal(err)
	}
	var h fasthttp.RequestHeader
	h.SetMethod("GET")
	return &Call{Pool: pool, Clients: NewTransport().Clients(pool, time.Second), URI: []byte("/x?y=1"),
		Header: &h, Timeout: 5 * time.Second, MaxBody: 1 << 10}
}

func targets(urls ...string) []config.Target {
	var ts []config.Target
	for _, u := range urls {
		ts = append(ts, config.Target{URL: u})
	}
	return ts
}

func TestGetRetriesOnAnotherTarget(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.RequestURI+" "+r.Host)
	}))
	defer be.Close()
	c := callTo(t, config.Service{Targets: targets("http://"+testutil.ClosedPort(t), be.URL)})
	want := "GET /x?y=1 " + strings.TrimPrefix(be.URL, "http://")
	for i := range 4 { // round robin starts on each target in turn
		res := Get(c, nil)
		if res.Err != nil || res.Status != 200 || string(res.Body) != want || res.Target.Index != 1 {
			t.Fatalf("call %d: %d %q %v (target %v)", i, res.Status, res.Body, res.Err, res.Target)
		}
	}
}

func TestGetEndsOnAnyAnswerAndBoundsIt(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "nope", 404)
		case "/big":
			w.Write(bytes.Repeat([]byte("a"), 1<<10+1))
		case "/exact":
			w.Write(bytes.Repeat([]byte("a"), 1<<10))
		}
	}))
	defer be.Close()
	c := callTo(t, config.Service{Targets: targets(be.URL)})
	c.URI = []byte("/missing")
	if res := Get(c, nil); res.Err != nil || res.Status != 404 || string(res.Body) != "nope\n" {
		t.Errorf("404: %d %q %v", res.Status, res.Body, res.Err)
	}
	c.URI = []byte("/big")
	if res := Get(c, nil); !errors.Is(res.Err, ErrAnswerTooLarge) || res.Code != CodeBodyTooLarge || res.Status != 200 || len(res.Body) != 0 {
		t.Errorf("too large: %d %d bytes %v %s", res.Status, len(res.Body), res.Err, res.Code)
	}
	c.URI = []byte("/exact")
	if res := Get(c, []byte("kept")); res.Err != nil || len(res.Body) != 4+1<<10 || !bytes.HasPrefix(res.Body, []byte("kept")) {
		t.Errorf("at the limit: %d bytes %v", len(res.Body), res.Err)
	}
}

func TestGetTimesOut(t *testing.T) {
	stuck := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stuck }))
	defer be.Close()
	defer close(stuck)
	c := callTo(t, config.Service{Targets: targets(be.URL)})
	c.Timeout = 50 * time.Millisecond
	if res := Get(c, nil); res.Code != CodeUpstreamTimeout || res.Status != 0 {
		t.Errorf("%d %v %s", res.Status, res.Err, res.Code)
	}
}

func TestGetGoesThroughTheCircuitBreaker(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer be.Close()
	c := callTo(t, config.Service{Targets: targets(be.URL), CircuitBreaker: &config.CircuitBreaker{
		ErrorRatio: 0.5, MinRequests: 2, Window: config.Duration(time.Minute), OpenFor: config.Duration(time.Minute)}})
	for range 2 {
		if res := Get(c, nil); res.Status != 500 {
			t.Fatalf("%d %v", res.Status, res.Err)
		}
	}
	if res := Get(c, nil); res.Code != CodeCircuitOpen || !errors.Is(res.Err, upstream.ErrCircuitOpen) || res.Target != nil {
		t.Errorf("breaker open: %d %v %s", res.Status, res.Err, res.Code)
	}
}

func TestCallHeaderSendsTheGatewaysHeadersOnly(t *testing.T) {
	var ctx fasthttp.RequestCtx
	in := &ctx.Request.Header
	in.SetMethod("POST")
	in.SetHost("api.example.com")
	in.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in.Set("Authorization", "Bearer secret")
	in.Set("Cookie", "s=1")
	in.Set("X-Forwarded-For", "6.6.6.6")
	r := &Request{RequestID: []byte("id-1"), Peer: netip.MustParseAddr("10.0.0.1"), ClientIP: netip.MustParseAddr("10.0.0.1"),
		Proto: "https", ConsumerName: []byte("alice"), ConsumerGroups: []byte("a, b")}
	var h fasthttp.RequestHeader
	h.Set("Stale", "from an earlier request")
	CallHeader(&ctx, r, &h)
	want := map[string]string{
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-Request-Id": "id-1",
		"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com",
		"X-Real-Ip": "10.0.0.1", "X-Consumer-Name": "alice", "X-Consumer-Groups": "a, b", "Accept": "application/json",
		"Authorization": "", "Cookie": "", "Stale": "",
	}
	for name, w := range want {
		if v := string(h.Peek(name)); v != w {
			t.Errorf("%s = %q, want %q", name, v, w)
		}
	}
	if string(h.Method()) != "GET" {
		t.Errorf("method %s", h.Method())
	}
}

func TestReadBounded(t *testing.T) {
	for _, tc := range []struct {
		body       string
		size       int
		want       string
		tooLarge   bool
		brokenBody bool
	}{
		{body: "", size: -1, want: ""},
		{body: "abcd", size: -1, want: "abcd"},
		{body: "abcd", size: 4, want: "abcd"},
		{body: "abcde", size: -1, tooLarge: true},
		{body: "abcde", size: 2, tooLarge: true}, // more than announced
		{body: "ab", brokenBody: true},
	} {
		var r io.Reader = iotest.OneByteReader(strings.NewReader(tc.body))
		if tc.brokenBody {
			r = io.MultiReader(r, iotest.ErrReader(io.ErrUnexpectedEOF))
		}
		got, err := readBounded(r, []byte("x"), 4, tc.size)
		switch {
		case tc.tooLarge:
			if !errors.Is(err, ErrAnswerTooLarge) || string(got) != "x" {
				t.Errorf("%q: %q %v, want too large", tc.body, got, err)
			}
		case tc.brokenBody:
			if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "x" {
				t.Errorf("%q broken: %q %v", tc.body, got, err)
			}
		default:
			if err != nil || string(got) != "x"+tc.want {
				t.Errorf("%q: %q %v", tc.body, got, err)
			}
		}
	}
}
