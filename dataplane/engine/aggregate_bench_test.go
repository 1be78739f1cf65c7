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

// benchJSONGateway serves cfg from an engine on an in-memory listener whose
// every upstream is one in-memory backend answering a small JSON object.
func benchJSONGateway(b *testing.B, cfg *config.Config) *fasthttputil.InmemoryListener {
	be := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.WriteString(`{"id":5,"name":"alice","items":[1,2,3]}`)
	}}
	go srv.Serve(be)
	b.Cleanup(func() { be.Close() })
	tr := proxy.NewTransport()
	tr.Dial = func(string) (net.Conn, error) { return be.Dial() }
	e := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Transport: tr})
	cfg.ApplyDefaults()
	if err := e.Apply(cfg, 1); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	gw := fasthttputil.NewInmemoryListener()
	go listener.New(&cfg.Server, e.ServeHTTP).ServeListener(gw)
	b.Cleanup(func() { gw.Close() })
	return gw
}

// BenchmarkDirectCall is one proxied GET of a small JSON answer, the
// baseline of BenchmarkAggregateTwoCalls: two such calls, made in parallel
// by an aggregate route and merged into one answer.
func BenchmarkDirectCall(b *testing.B) {
	gw := benchJSONGateway(b, oneRoute(config.Route{Paths: []string{"/users"}}, "http://backend:80"))
	runClients(b, gw, "/users/5")
}

func BenchmarkAggregateTwoCalls(b *testing.B) {
	gw := benchJSONGateway(b, aggConfig(config.Route{Paths: []string{"/me/{id}"}, Aggregate: []config.AggregateCall{
		{Key: "profile", Service: "users", Path: "/users/{id}"},
		{Key: "orders", Service: "orders", Path: "/orders?user={id}"},
	}}, map[string][]string{"users": {"http://users:80"}, "orders": {"http://orders:80"}}))
	runClients(b, gw, "/me/5")
}

// BenchmarkAggregateDependentCalls is two calls where the second reads a
// field of the first: they run one after the other and the first answer is
// decoded.
func BenchmarkAggregateDependentCalls(b *testing.B) {
	gw := benchJSONGateway(b, aggConfig(config.Route{Paths: []string{"/me/{id}"}, Aggregate: []config.AggregateCall{
		{Key: "profile", Service: "users", Path: "/users/{id}"},
		{Key: "orders", Service: "orders", Path: "/orders?user={profile.name}"},
	}}, map[string][]string{"users": {"http://users:80"}, "orders": {"http://orders:80"}}))
	runClients(b, gw, "/me/5")
}
