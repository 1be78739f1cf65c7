package loadshed_test

import (
	"net/netip"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

// benchFree runs the request and end of a request through a route whose
// limit is never reached, from every core at once, as the engine does:
// Run (Handle takes a slot), then Finish (gives it back).
func benchFree(b *testing.B, settings map[string]any) {
	chain := compile(b, settings)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		var x policy.Exchange
		path, client := []byte("/"), netip.MustParseAddr("192.0.2.1")
		for pb.Next() {
			x.Reset(&ctx, "r", "s", path, client, nil)
			if rej := chain.Run(&x); rej != nil {
				b.Fatal(rej)
			}
			chain.Finish(&x)
		}
	})
}

func compile(tb testing.TB, settings map[string]any) *policy.Chain {
	chain, err := policy.Compile(config.Policies{"load-shed": settings}, &policy.Build{Route: "r", State: policy.NewState()})
	if err != nil {
		tb.Fatal(err)
	}
	return chain
}

var (
	static        = map[string]any{"max_concurrent": 1_000_000}
	adaptiveLimit = map[string]any{"max_concurrent": 1_000_000, "mode": "adaptive", "target_latency": "200ms"}
)

// Taking and giving back a free slot allocates nothing, in either mode.
func TestFreeSlotDoesNotAllocate(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for name, settings := range map[string]map[string]any{"static": static, "adaptive": adaptiveLimit} {
		chain := compile(t, settings)
		var ctx fasthttp.RequestCtx
		var x policy.Exchange
		path, client := []byte("/"), netip.MustParseAddr("192.0.2.1")
		allocs := testing.AllocsPerRun(1000, func() {
			x.Reset(&ctx, "r", "s", path, client, nil)
			if rej := chain.Run(&x); rej != nil {
				t.Fatal(rej)
			}
			chain.Finish(&x)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request", name, allocs)
		}
	}
}

func BenchmarkLoadShedFree(b *testing.B) {
	b.Run("static", func(b *testing.B) {
		benchFree(b, static)
	})
	b.Run("adaptive", func(b *testing.B) {
		benchFree(b, adaptiveLimit)
	})
}
