package introspection_test

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// benchChain compiles a route's chain with the policy asking d, as the
// engine does for a snapshot.
func benchChain(b *testing.B, d *idp) *policy.Chain {
	b.Helper()
	chain, err := policy.Compile(config.Policies{"oauth2-introspection": map[string]any{
		"url": d.URL, "client_id": idpClient, "client_secret": idpSecret,
		"scopes":            []any{"read"},
		"claims_to_headers": map[string]any{"sub": "X-User-Id"},
	}}, &policy.Build{
		Route: "r", Service: "s",
		Consumers: policy.NewDirectory([]config.Consumer{{Name: "alice", Groups: []string{"partners"}}}),
		State:     policy.NewState(), Shared: policy.NewShared(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return chain
}

var benchPath = []byte("/x")

func runChain(b *testing.B, chain *policy.Chain, ctx *fasthttp.RequestCtx, x *policy.Exchange) {
	x.Reset(ctx, "r", "s", benchPath, netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil)
	if rej := chain.Run(x); rej != nil || x.Consumer == nil || x.Consumer.Name != "alice" {
		b.Fatalf("refused: %v", rej)
	}
}

// BenchmarkIntrospectionCached is a request whose token's answer is cached:
// the cost the policy adds to every request but the first.
func BenchmarkIntrospectionCached(b *testing.B) {
	d := newIdP(b)
	d.issue("tok", map[string]any{"username": "alice", "sub": "u-1", "scope": "read write"})
	chain := benchChain(b, d)
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.Set("Authorization", "Bearer tok")
	var x policy.Exchange
	runChain(b, chain, ctx, &x) // fills the cache
	b.ReportAllocs()
	for b.Loop() {
		runChain(b, chain, ctx, &x)
	}
	if n := d.calls.Load(); n != 1 {
		b.Fatalf("%d calls to the endpoint, want 1", n)
	}
}

// BenchmarkIntrospectionCachedParallel is the same from every core at once
// (the cache's locks under contention).
func BenchmarkIntrospectionCachedParallel(b *testing.B) {
	d := newIdP(b)
	d.issue("tok", map[string]any{"username": "alice", "sub": "u-1", "scope": "read write"})
	chain := benchChain(b, d)
	warm := new(fasthttp.RequestCtx)
	warm.Request.Header.Set("Authorization", "Bearer tok")
	runChain(b, chain, warm, new(policy.Exchange))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Request.Header.Set("Authorization", "Bearer tok")
		var x policy.Exchange
		for pb.Next() {
			runChain(b, chain, ctx, &x)
		}
	})
}
