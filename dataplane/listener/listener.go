// Package listener runs the proxy's client-facing HTTP/1.1 servers with the
// edge limits of the configuration and drains them gracefully. Each HTTP/1.1
// connection is read through a check of its raw request heads and closed
// gently when a request was cut short (edgeconn.go). HTTP/2 is served beside
// HTTP/1.1 on the same ports (mux.go), each connection behind a guard that
// cuts off floods (h2guard.go).
package listener

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/edge"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/valyala/fasthttp"
)

// Server is one proxy listener.
type Server struct {
	// OnH2Cutoff, when set (before Listen), is called each time the HTTP/2
	// guard cuts a connection off, with what the client abused ("PING
	// flood", "rapid reset", ...: the GOAWAY's debug data). It runs on the
	// connection's goroutine: keep it short (count it).
	OnH2Cutoff func(reason string)

	srv       *fasthttp.Server
	ln        net.Listener
	handler   fasthttp.RequestHandler
	timeout   time.Duration
	maxHeader int
	http2     bool
	mux       *Mux
}

// New configures a server for handler with the edge limits of cfg.
func New(cfg *config.Server, handler fasthttp.RequestHandler) *Server {
	maxHeader := cfg.Limits.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 16384
	}
	maxBody := cfg.Limits.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 10 << 20
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			handler(ctx)
			if ctx.Hijacked() {
				markHijacked(ctx)
			}
		},
		ErrorHandler: errorHandler,
		// The request head must fit in the read buffer, so its size is the
		// header limit: a larger head is answered 431.
		ReadBufferSize:  maxHeader,
		WriteBufferSize: 16 << 10,
		// With a streamed body ReadTimeout bounds reading the request head.
		ReadTimeout:                  cfg.ReadHeaderTimeout.Or(10 * time.Second),
		IdleTimeout:                  cfg.IdleTimeout.Or(60 * time.Second),
		MaxRequestBodySize:           int(maxBody),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		TCPKeepalive:                 true,
		Concurrency:                  256 * 1024,
		SecureErrorLogMessage:        true,
		Logger:                       quietLogger{},
		// A client that waits for 100 Continue before sending an oversize
		// body is refused without it. The decision cannot wait for the
		// route (and its request-size-limit): fasthttp sends 100 Continue,
		// then reads the first bytes of the body, before the handler runs.
		ExpectHandler: func(ctx *fasthttp.RequestCtx) int {
			if ctx.Request.Header.ContentLength() > int(maxBody) {
				// fasthttp asks ExpectHandler to leave the response alone,
				// but sends it as it stands, with the status returned, and
				// closes the connection (TestExpectContinueOversize in
				// dataplane/engine holds it to that).
				proxy.WriteError(ctx, fasthttp.StatusRequestEntityTooLarge, proxy.CodeBodyTooLarge, "request body too large", "")
				return fasthttp.StatusRequestEntityTooLarge
			}
			return fasthttp.StatusContinue
		},
	}
	return &Server{srv: srv, handler: handler, timeout: srv.ReadTimeout, maxHeader: maxHeader}
}

// Listen binds addr.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.bind(ln)
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// EnableHTTP2 makes the server accept HTTP/2 too: by ALPN on a TLS
// listener, with prior knowledge (h2c) on a clear one. Call it before Listen.
func (s *Server) EnableHTTP2() { s.http2 = true }

// bind takes ln as the server's listener, behind a protocol Mux when HTTP/2
// is on.
func (s *Server) bind(ln net.Listener) {
	s.ln = ln
	if s.http2 {
		s.mux = NewMux(ln, HTTP2Handler(s.handler), s.timeout, s.maxHeader)
		s.mux.onCutoff = s.OnH2Cutoff
	}
}

// Serve accepts connections until Shutdown.
func (s *Server) Serve() error {
	ln := s.ln
	if s.mux != nil {
		go s.mux.Serve()
		ln = s.mux.HTTP1Listener()
	}
	err := s.srv.Serve(edgeListener{ln})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ServeListener serves on a listener made elsewhere (tests, benchmarks).
func (s *Server) ServeListener(ln net.Listener) error {
	s.bind(ln)
	return s.Serve()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish (or ctx to end).
func (s *Server) Shutdown(ctx context.Context) error {
	if s.mux == nil {
		return s.srv.ShutdownWithContext(ctx)
	}
	h2done := make(chan error, 1)
	go func() { h2done <- s.mux.Shutdown(ctx) }()
	return errors.Join(s.srv.ShutdownWithContext(ctx), <-h2done)
}

// errorHandler answers requests that could not be read, with the gateway's
// JSON error, and closes the connection: after a framing error nothing that
// follows on it can be trusted.
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	status, code, msg := fasthttp.StatusBadRequest, proxy.CodeBadRequest, "malformed request"
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, edge.ErrBareLineEnding):
		msg = "malformed request: " + edge.ErrBareLineEnding.Error()
	case errors.As(err, &small):
		status, code, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, msg = fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large"
	case isTimeout(err):
		status, code, msg = fasthttp.StatusRequestTimeout, "request_timeout", "request not received in time"
	}
	proxy.WriteError(ctx, status, code, msg, "")
	ctx.SetConnectionClose()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// quietLogger drops fasthttp's own error log lines: every client error is
// already answered and counted by the gateway.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
