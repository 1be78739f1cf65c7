package requestvalidation_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/valyala/fasthttp"
)

func compile(b *testing.B, settings map[string]any) *policy.Chain {
	chain, err := policy.Compile(config.Policies{"request-validation": settings}, &policy.Build{Route: "r", Shared: policy.NewShared()})
	if err != nil {
		b.Fatal(err)
	}
	return chain
}

// run runs chain on one request over and over, as the engine does, and
// fails if the request is refused.
func run(b *testing.B, chain *policy.Chain, method, path, query string, body []byte, headers ...string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path + "?" + query)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	if body != nil {
		ctx.Request.SetBody(body)
		ctx.Request.Header.SetContentLength(len(body))
	}
	var x policy.Exchange
	p, q, client := []byte(path), []byte(query), netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		x.Reset(&ctx, "r", "s", p, client, nil)
		x.SetClientQuery(q)
		if rej := chain.Run(&x); rej != nil {
			b.Fatalf("refused: %s", rej.Message)
		}
		chain.Finish(&x)
	}
}

// BenchmarkValidateQuery checks a GET with two query parameters (an
// integer range, an enum) and a form array: the operation named in the
// settings, and found by kin-openapi's router.
func BenchmarkValidateQuery(b *testing.B) {
	b.Run("operation", func(b *testing.B) {
		run(b, compile(b, map[string]any{"spec": spec, "operation": "listPets"}), "GET", "/pets", "limit=10&tag=dog&sort=name,age", nil)
	})
	b.Run("routed", func(b *testing.B) {
		run(b, compile(b, map[string]any{"spec": spec}), "GET", "/pets", "limit=10&tag=dog&sort=name,age", nil)
	})
	b.Run("path-parameter", func(b *testing.B) {
		run(b, compile(b, map[string]any{"spec": spec, "operation": "showPetById"}), "GET", "/pets/42", "", nil)
	})
}

// BenchmarkValidateJSONBody checks a POST with a header parameter and a
// JSON body against an object schema with nested objects and arrays, at
// two sizes.
func BenchmarkValidateJSONBody(b *testing.B) {
	chain := compile(b, map[string]any{"spec": spec, "operation": "createPet"})
	small := []byte(`{"name":"Rex","email":"ann@example.com","tag":"dog","age":4,"address":{"city":"Oslo","zip":"01234"}}`)
	b.Run("small", func(b *testing.B) {
		run(b, chain, "POST", "/pets", "", small, "Content-Type", "application/json", "X-Request-Token", "0123abcd")
	})
	large := []byte(`{"name":"Rex","email":"ann@example.com","toys":["a","b","c"],"address":{"city":"` + strings.Repeat("Oslo", 500) + `"}}`)
	b.Run("2KiB", func(b *testing.B) {
		run(b, chain, "POST", "/pets", "", large, "Content-Type", "application/json", "X-Request-Token", "0123abcd")
	})
}
