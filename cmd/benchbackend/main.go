// Command benchbackend is a minimal HTTP/1.1 backend for load benchmarks: it
// answers every request with 200 and a short text body, with keep-alive, and
// costs as little CPU as possible so that what a benchmark measures is the
// proxy in front of it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

var body = []byte("hello world\n")

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "benchbackend:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := newServer()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown()
	}
}

func newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       handle,
		Name:                          "benchbackend",
		NoDefaultDate:                 true, // formatting a date per response is pure overhead here
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
	}
}

func handle(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	ctx.SetBody(body)
}
