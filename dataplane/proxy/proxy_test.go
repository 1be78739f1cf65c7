package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/config"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

func TestWriteErrorShape(t *testing.T) {
	var ctx fasthttp.RequestCtx
	WriteError(&ctx, 504, CodeUpstreamTimeout, "too \"slow\"\n", "req-1")
	var body struct {
		Error struct {
			Status    int    `json:"status"`
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
		t.Fatalf("not JSON: %q", ctx.Response.Body())
	}
	e := body.Error
	if e.Status != 504 || e.Code != "upstream_timeout" || e.Message != "too \"slow\"\n" || e.RequestID != "req-1" {
		t.Errorf("%+v", e)
	}
	if ctx.Response.StatusCode() != 504 || string(ctx.Response.Header.ContentType()) != "application/json" ||
		string(ctx.Response.Header.Peek("X-Request-ID")) != "req-1" {
		t.Errorf("head: %s", ctx.Response.Header.String())
	}
	if testutil.RaceEnabled {
		return // sync.Pool drops buffers at random under the race detector
	}
	if n := testing.AllocsPerRun(100, func() {
		WriteError(&ctx, 404, CodeNoRoute, "no route", "req-2")
	}); n > 0 {
		t.Errorf("WriteError allocates %v times", n)
	}
}

func TestFailureMapping(t *testing.T) {
	timeoutDial := &errDial{err: &net.OpError{Op: "dial", Err: timeoutErr{}}}
	refusedDial := &errDial{err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	cases := []struct {
		name    string
		err     error
		failure upstream.Failure
		status  int
		code    string
	}{
		{"refused", refusedDial, upstream.ConnectFailed, 502, CodeUpstreamUnavailable},
		{"refused, wrapped", fmt.Errorf("do: %w", refusedDial), upstream.ConnectFailed, 502, CodeUpstreamUnavailable},
		{"connect timeout", timeoutDial, upstream.ConnectFailed, 504, CodeUpstreamTimeout},
		{"response timeout", fasthttp.ErrTimeout, upstream.Timeout, 504, CodeUpstreamTimeout},
		{"HTTP/2 response timeout", fmt.Errorf("h2: %w", context.DeadlineExceeded), upstream.Timeout, 504, CodeUpstreamTimeout},
		{"handshake timeout", &errDial{err: context.DeadlineExceeded}, upstream.ConnectFailed, 504, CodeUpstreamTimeout},
		{"closed early", fasthttp.ErrConnectionClosed, upstream.Reset, 502, CodeUpstreamUnavailable},
		{"other", errors.New("malformed response"), upstream.Reset, 502, CodeUpstreamUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if f := classify(c.err); f != c.failure {
				t.Errorf("classify = %v, want %v", f, c.failure)
			}
			if status, code, _ := failureStatus(c.err); status != c.status || code != c.code {
				t.Errorf("failureStatus = %d %s, want %d %s", status, code, c.status, c.code)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestHeaderHelpers(t *testing.T) {
	var tokens []string
	for list := []byte(" keep-alive , X-A,,x-b "); len(list) > 0; {
		var tok []byte
		tok, list = nextToken(list)
		if len(tok) > 0 {
			tokens = append(tokens, string(tok))
		}
	}
	if fmt.Sprint(tokens) != "[keep-alive X-A x-b]" {
		t.Errorf("tokens %v", tokens)
	}
	for name, want := range map[string]bool{
		"X-Consumer-Name": true, "x-consumer-groups": true, "X-AUTHENTICATED-USERID": true,
		"X-Consumer": false, "X-Consumers": false, "Authorization": false,
	} {
		if got := isIdentity([]byte(name)); got != want {
			t.Errorf("isIdentity(%s) = %v", name, got)
		}
	}
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "PUT": true, "DELETE": true, "OPTIONS": true, "POST": false, "PATCH": false, "get": false} {
		if Idempotent([]byte(m)) != want {
			t.Errorf("Idempotent(%s) != %v", m, want)
		}
	}
}

func TestRequestCleaning(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/a")
	ctx.Request.Header.Set("Accept", "*/*")
	if requestNeedsCleaning(&ctx.Request.Header) {
		t.Error("a plain request needs cleaning")
	}
	for _, name := range []string{"Connection", "Upgrade", "X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Request-Id", "X-Consumer-Name", "X_Anything"} {
		var c fasthttp.RequestCtx
		c.Request.Header.Set(name, "v")
		if !requestNeedsCleaning(&c.Request.Header) {
			t.Errorf("%s does not trigger cleaning", name)
		}
	}
}

// Clients of targets that a new configuration no longer uses are forgotten,
// HTTP/1.1 and HTTP/2 ones alike; kept ones are reused across snapshots.
func TestTransportRetain(t *testing.T) {
	reg := upstream.NewRegistry(upstream.RegistryOptions{})
	defer reg.Close()
	pool := func(url string) *upstream.Pool {
		p, err := reg.NewPool(config.Service{Name: url, Targets: []config.Target{{URL: url}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tr := NewTransport()
	h1 := tr.Clients(pool("http://127.0.0.1:1"), time.Second)
	h2 := tr.H2Clients(pool("h2c://127.0.0.1:2"), time.Second)
	if again := tr.Clients(pool("http://127.0.0.1:1"), time.Second); again[0] != h1[0] {
		t.Error("a kept target got a new client")
	}
	tr.Retain([][]*fasthttp.HostClient{h1}, [][]http.RoundTripper{h2})
	if len(tr.clients) != 1 || len(tr.h2) != 1 {
		t.Fatalf("kept: %d HTTP/1.1 and %d HTTP/2 clients, want 1 and 1", len(tr.clients), len(tr.h2))
	}
	tr.Retain(nil, nil)
	if len(tr.clients) != 0 || len(tr.h2) != 0 {
		t.Errorf("after a configuration without them: %d and %d clients left", len(tr.clients), len(tr.h2))
	}
}

func TestIsManagedKnowsEveryManagedName(t *testing.T) {
	managed := append(append([]string{"X-Request-Id", "x-consumer-name", "X-CONSUMER-GROUPS", "x-authenticated-userid"}, hopByHop...), gatewaySet...)
	for _, name := range managed {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !isManaged([]byte(n)) {
				t.Errorf("isManaged(%q) = false", n)
			}
		}
	}
	for _, n := range []string{"Accept", "User-Agent", "Host", "Content-Type", "Cookie", "X-Api-Key", "Forward", "Tea", "", "Connections"} {
		if isManaged([]byte(n)) {
			t.Errorf("isManaged(%q) = true", n)
		}
	}
}
