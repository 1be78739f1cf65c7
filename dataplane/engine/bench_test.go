package engine

import (
	"log/slog"
	"net"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/observe/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// benchBackend is a fasthttp server on an in-memory listener answering a
// small body, so that the benchmarks measure the gateway's own work rather
// than the kernel's loopback.
func benchBackend(b *testing.B) *fasthttputil.InmemoryListener {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.WriteString("hello world\n")
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { ln.Close() })
	return ln
}

// runClients sends GET requests through ln from parallel clients.
func runClients(b *testing.B, ln *fasthttputil.InmemoryListener, path string) {
	client := &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 256}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://gateway" + path)
		for pb.Next() {
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("status %d err %v", resp.StatusCode(), err)
				return
			}
		}
	})
}

// BenchmarkProxy is the whole request path of the gateway: parse, route,
// forward through the upstream pool and transport, stream the answer back,
// metrics. BenchmarkBareFasthttpProxy is the floor: the same exchange
// through a fasthttp proxy that does nothing else.
func BenchmarkProxy(b *testing.B) {
	be := benchBackend(b)
	tr := proxy.NewTransport()
	tr.Dial = func(string) (net.Conn, error) { return be.Dial() }
	e := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Transport: tr})
	cfg := oneRoute(config.Route{Paths: []string{"/api"}, StripPath: true}, "http://backend:80")
	cfg.ApplyDefaults()
	if err := e.Apply(cfg, 1); err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	srv := listener.New(&cfg.Server, e.ServeHTTP)
	gw := fasthttputil.NewInmemoryListener()
	go srv.ServeListener(gw)
	defer gw.Close()
	runClients(b, gw, "/api/users/5?x=1")
}

func BenchmarkBareFasthttpProxy(b *testing.B) {
	be := benchBackend(b)
	hc := &fasthttp.HostClient{Addr: "backend", Dial: func(string) (net.Conn, error) { return be.Dial() }, MaxConns: 4096}
	gw := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), 502)
		}
	}}
	go srv.Serve(gw)
	defer gw.Close()
	runClients(b, gw, "/api/users/5?x=1")
}
