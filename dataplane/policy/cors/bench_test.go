package cors_test

import (
	"net/netip"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/valyala/fasthttp"
)

func compile(b *testing.B, settings map[string]any) *policy.Chain {
	chain, err := policy.Compile(config.Policies{"cors": settings}, &policy.Build{Route: "r"})
	if err != nil {
		b.Fatal(err)
	}
	return chain
}

// run runs the request and response phases of chain as the engine does,
// on a request with the given headers and a response whose upstream said
// Vary: Accept-Encoding.
func run(b *testing.B, chain *policy.Chain, method string, headers ...string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	var x policy.Exchange
	path, client := []byte("/"), netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Header.Reset()
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
		x.Reset(&ctx, "r", "s", path, client, nil)
		chain.Run(&x)
		chain.Respond(&x)
	}
	if len(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) == 0 {
		b.Fatal("no Access-Control-Allow-Origin")
	}
}

var reflected = map[string]any{
	"origins":         []any{"https://app.example.com", "https://*.example.org"},
	"credentials":     true,
	"exposed_headers": []any{"X-Total", "X-Request-ID"},
	"max_age":         "10m",
}

// BenchmarkCORSActual is an actual request from an allowed origin: one
// matched by a wildcard, so reflected with credentials and Vary merged;
// and the fixed answer of "*".
func BenchmarkCORSActual(b *testing.B) {
	b.Run("wildcard-credentials", func(b *testing.B) {
		run(b, compile(b, reflected), "GET", "Origin", "https://eu.shop.example.org")
	})
	b.Run("any-origin", func(b *testing.B) {
		run(b, compile(b, map[string]any{"exposed_headers": []any{"X-Total"}}), "GET", "Origin", "https://eu.shop.example.org")
	})
}

func BenchmarkCORSPreflight(b *testing.B) {
	run(b, compile(b, reflected), "OPTIONS",
		"Origin", "https://app.example.com",
		"Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "content-type, x-trace")
}
