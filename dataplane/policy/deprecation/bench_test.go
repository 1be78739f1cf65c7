package deprecation_test

import (
	"net/netip"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/valyala/fasthttp"
)

// BenchmarkDeprecation is one answer of a deprecated route that refuses
// after its sunset: the clock read, Deprecation and Sunset set, the Link
// line added beside the upstream's.
func BenchmarkDeprecation(b *testing.B) {
	chain, err := policy.Compile(config.Policies{"deprecation": map[string]any{
		"deprecated_at": "2026-01-01", "sunset": "2099-06-30", "after_sunset": "refuse",
		"link": "https://developer.example.com/deprecation",
	}}, &policy.Build{Route: "r", State: policy.NewState()})
	if err != nil {
		b.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	var x policy.Exchange
	client, path := netip.MustParseAddr("192.0.2.1"), []byte("/")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Header.Reset()
		ctx.Response.Header.Set("Link", `</items?page=2>; rel="next"`)
		x.Reset(&ctx, "r", "s", path, client, nil)
		if rej := chain.Run(&x); rej != nil {
			b.Fatal(rej)
		}
		chain.Respond(&x)
	}
	if len(ctx.Response.Header.PeekAll("Link")) != 2 || string(ctx.Response.Header.Peek("Deprecation")) != "@1767225600" {
		b.Fatalf("headers: %s", ctx.Response.Header.String())
	}
}
