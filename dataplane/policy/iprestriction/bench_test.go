package iprestriction_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/iprestriction"
	"github.com/valyala/fasthttp"
)

// BenchmarkIPRestriction runs the compiled policy as the engine does, on
// a deny list of 10 and of 10,000 ranges (a fifth of them IPv6), for
// clients spread over the listed networks and beside them.
func BenchmarkIPRestriction(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("cidrs=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			prefixes := randomPrefixes(r, n)
			deny := make([]any, len(prefixes))
			for i, p := range prefixes {
				deny[i] = p.String()
			}
			chain, err := policy.Compile(config.Policies{"ip-restriction": map[string]any{"deny": deny}}, &policy.Build{Route: "r"})
			if err != nil {
				b.Fatal(err)
			}
			clients := probes(r, prefixes)[:1024]
			var ctx fasthttp.RequestCtx
			var x policy.Exchange
			path := []byte("/")
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				x.Reset(&ctx, "r", "s", path, clients[i&1023], nil)
				chain.Run(&x)
			}
		})
	}
}

// BenchmarkSetContains is the lookup alone, without the request around it.
func BenchmarkSetContains(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("cidrs=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			prefixes := randomPrefixes(r, n)
			set := iprestriction.NewSet(prefixes)
			clients := probes(r, prefixes)[:1024]
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				set.Contains(clients[i&1023])
			}
		})
	}
}
