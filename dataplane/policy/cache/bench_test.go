package cache_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

// chainExchange drives a route's policies as the engine does, without the
// network: Run, then (as the engine does with a Reject or the upstream's
// answer) the response, Respond and Finish.
type chainExchange struct {
	chain *policy.Chain
	ctx   fasthttp.RequestCtx
	x     policy.Exchange
	path  []byte
	query []byte
}

func newChainExchange(tb testing.TB, settings map[string]any, path, query string) *chainExchange {
	state := policy.NewState()
	tb.Cleanup(state.Close)
	chain, err := policy.Compile(config.Policies{"cache": settings}, &policy.Build{Route: "bench", State: state})
	if err != nil {
		tb.Fatal(err)
	}
	c := &chainExchange{chain: chain, path: []byte(path), query: []byte(query)}
	c.ctx.Request.Header.SetMethod("GET")
	c.ctx.Request.Header.SetHost("api.example.com")
	c.ctx.Request.Header.Set("Accept", "application/json")
	c.ctx.Request.SetRequestURI(path + "?" + query)
	return c
}

var client = netip.MustParseAddr("192.0.2.1")

// run makes one request; upstream answers it when the policy does not.
func (c *chainExchange) run(upstream func(*fasthttp.Response)) *policy.Reject {
	c.ctx.Response.Reset()
	c.x.Reset(&c.ctx, "bench", "svc", c.path, client, nil)
	c.x.SetClientQuery(c.query)
	rej := c.chain.Run(&c.x)
	if rej != nil {
		c.ctx.Response.SetStatusCode(rej.Status)
		c.ctx.Response.SetBodyRaw(rej.Body)
	} else {
		upstream(&c.ctx.Response)
	}
	c.chain.Respond(&c.x)
	c.chain.Finish(&c.x)
	return rej
}

var benchBody = []byte(`{"items":[` + strings.Repeat(`{"id":1,"name":"widget"},`, 40) + `{"id":2}]}`)

func jsonAnswer(r *fasthttp.Response) {
	r.SetStatusCode(200)
	r.Header.SetContentType("application/json")
	r.Header.Set("ETag", `"v1"`)
	r.Header.Set("Cache-Control", "public, max-age=300")
	r.SetBody(benchBody)
}

// fill stores the answer, and checks the next request is a hit.
func (c *chainExchange) fill(tb testing.TB) {
	if rej := c.run(jsonAnswer); rej != nil {
		tb.Fatalf("first request answered by the policy: %+v", rej)
	}
	if rej := c.run(jsonAnswer); rej == nil || rej.Status != 200 || len(rej.Body) != len(benchBody) {
		tb.Fatalf("second request not a hit: %+v", rej)
	}
}

var hitSettings = map[string]any{"vary": []any{"Accept"}}

// A hit from memory allocates nothing: no body copy, the answer is the
// entry's own.
func TestHitDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c := newChainExchange(t, hitSettings, "/items", "page=2")
	c.fill(t)
	allocs := testing.AllocsPerRun(1000, func() {
		if rej := c.run(jsonAnswer); rej == nil {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per hit", allocs)
	}
	if got := string(c.ctx.Response.Header.Peek("X-Cache")); got != "HIT" {
		t.Errorf("X-Cache %q", got)
	}
}

// BenchmarkCacheHit is the policy's cost of answering from memory: key,
// lookup, answer headers, response phase and end of exchange.
func BenchmarkCacheHit(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		c := newChainExchange(b, hitSettings, "/items", "page=2")
		c.fill(b)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			c.run(jsonAnswer)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := newChainExchange(b, hitSettings, "/items", "page=2")
		c.fill(b)
		chain := c.chain
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := &chainExchange{chain: chain, path: c.path, query: c.query}
			w.ctx.Request.Header.SetMethod("GET")
			w.ctx.Request.Header.SetHost("api.example.com")
			w.ctx.Request.Header.Set("Accept", "application/json")
			for pb.Next() {
				w.run(jsonAnswer)
			}
		})
	})
}
