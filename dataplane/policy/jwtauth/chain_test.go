package jwtauth_test

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// compileJWT builds a route's chain holding only the jwt policy, for
// benchmarks and fuzzing without the network in the way.
func compileJWT(tb testing.TB, settings map[string]any, consumers []config.Consumer) *policy.Chain {
	tb.Helper()
	b := &policy.Build{
		Route: "r", Service: "s",
		Consumers: policy.NewDirectory(consumers),
		State:     policy.NewState(), Shared: policy.NewShared(),
		Logger: slog.New(slog.DiscardHandler),
	}
	tb.Cleanup(b.State.Close)
	c, err := policy.Compile(config.Policies{"jwt": settings}, b)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

var rootPath = []byte("/")

// exchange is one request through a chain, reusable across iterations.
type exchange struct {
	ctx fasthttp.RequestCtx
	x   policy.Exchange
}

func (e *exchange) run(c *policy.Chain, authorization []byte) (*policy.Consumer, *policy.Reject) {
	e.ctx.Request.Header.SetBytesV("Authorization", authorization)
	e.x.Reset(&e.ctx, "r", "s", rootPath, netip.Addr{}, nil)
	r := c.Run(&e.x)
	return e.x.Consumer, r
}
