package transform_test

import (
	"net/netip"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/valyala/fasthttp"
)

func compileChain(b *testing.B, name string, settings map[string]any) *policy.Chain {
	chain, err := policy.Compile(config.Policies{name: settings}, &policy.Build{Route: "r"})
	if err != nil {
		b.Fatal(err)
	}
	return chain
}

var (
	benchConsumer = policy.NewConsumer(&config.Consumer{Name: "alice", Groups: []string{"partners", "staff"}})
	benchPath     = []byte("/orders/42")
	benchClient   = netip.MustParseAddr("192.0.2.1")
	benchID       = []byte("0f9c2a7e-5b1d-4c36-9d0e-2f6a8b7c1d3e")
)

// BenchmarkRequestTransformHeaders is a typical header transform: six
// added values (five templates), one removal and one rename of a header
// the client sent.
func BenchmarkRequestTransformHeaders(b *testing.B) {
	chain := compileChain(b, "request-transform", map[string]any{
		"add_headers": map[string]any{
			"X-Who": "{consumer}", "X-Groups": "{consumer.groups}", "X-Client": "{client_ip}",
			"X-Trace": "trace-{request_id}", "X-From": "{header.X-In}", "X-Static": "v1",
		},
		"remove_headers": []any{"Authorization"},
		"rename_headers": map[string]any{"X-Old": "X-New"},
	})
	var ctx fasthttp.RequestCtx
	var x policy.Exchange
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Header.Set("Authorization", "Bearer abc")
		ctx.Request.Header.Set("X-Old", "old")
		ctx.Request.Header.Set("X-In", "in")
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		x.Consumer = benchConsumer
		if rej := chain.Run(&x); rej != nil {
			b.Fatal(rej)
		}
	}
	if string(ctx.Request.Header.Peek("X-New")) != "old" || string(ctx.Request.Header.Peek("X-Who")) != "alice" {
		b.Fatalf("headers not edited: %s", ctx.Request.Header.String())
	}
}

// BenchmarkRequestTransformQuery removes one parameter and sets two, one
// from a template, keeping three others.
func BenchmarkRequestTransformQuery(b *testing.B) {
	chain := compileChain(b, "request-transform", map[string]any{
		"remove_query": []any{"debug"},
		"add_query":    map[string]any{"who": "{consumer}", "v": "2"},
	})
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/orders?page=2&debug=1&sort=-date&q=a%20b")
	query := []byte("page=2&debug=1&sort=-date&q=a%20b")
	var x policy.Exchange
	b.ReportAllocs()
	for b.Loop() {
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		x.SetClientQuery(query)
		x.Consumer = benchConsumer
		chain.Run(&x)
	}
	if got := string(x.RawQuery()); got != "page=2&sort=-date&q=a%20b&v=2&who=alice" {
		b.Fatalf("query %s", got)
	}
}

// BenchmarkRequestTransformJSON edits a 1 KiB JSON body: one member
// removed, one renamed, two added.
func BenchmarkRequestTransformJSON(b *testing.B) {
	chain := compileChain(b, "request-transform", map[string]any{"json": map[string]any{
		"remove": []any{"/secret"},
		"rename": map[string]any{"/user/name": "/user/display_name"},
		"add":    map[string]any{"/owner": "{consumer}", "/meta/source": "gateway"},
	}})
	body := []byte(`{"secret":"s","user":{"name":"bob","id":42},"items":[`)
	for i := 0; len(body) < 1000; i++ {
		body = append(body, `{"sku":"A-100","qty":3,"price":12.5},`...)
	}
	body = append(body[:len(body)-1], "]}"...)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetContentType("application/json")
	var x policy.Exchange
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.SetBody(body)
		ctx.Request.Header.SetContentLength(len(body))
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		x.Consumer = benchConsumer
		if rej := chain.Run(&x); rej != nil {
			b.Fatal(rej)
		}
	}
	if got := ctx.Request.Body(); len(got) == len(body) {
		b.Fatalf("body not edited: %s", got)
	}
}

// BenchmarkResponseTransformHeaders adds, removes and renames response
// headers and maps a status.
func BenchmarkResponseTransformHeaders(b *testing.B) {
	chain := compileChain(b, "response-transform", map[string]any{
		"add_headers":    map[string]any{"X-Served-By": "gw:{route}", "Cache-Control": "no-store"},
		"remove_headers": []any{"Server", "X-Powered-By"},
		"rename_headers": map[string]any{"X-Internal-Id": "X-Id"},
		"status_map":     map[string]any{"500": 503},
	})
	var ctx fasthttp.RequestCtx
	var x policy.Exchange
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Header.Reset()
		ctx.Response.SetStatusCode(500)
		ctx.Response.Header.Set("X-Powered-By", "php")
		ctx.Response.Header.Set("X-Internal-Id", "7")
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		chain.Run(&x)
		chain.Respond(&x)
	}
	if ctx.Response.StatusCode() != 503 || string(ctx.Response.Header.Peek("X-Id")) != "7" {
		b.Fatalf("response not edited: %s", ctx.Response.Header.String())
	}
}
