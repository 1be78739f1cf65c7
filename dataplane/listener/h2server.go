//lint:file-ignore SA1019 x/net/http2's Server is deprecated in favour of net/http's, whose Serve recognises TLS only on a *tls.Conn; ServeConn is the one way to serve HTTP/2 on a connection wrapped by the guard, and from Go 1.27 it runs net/http's own implementation.

package listener

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// h2Server serves HTTP/2 on connections whose client preface has been read.
// It is golang.org/x/net/http2's server, the code net/http bundles.
type h2Server struct {
	base *http.Server // settings; it serves no connection itself
	srv  *http2.Server
}

// maxFrameSize is the protocol's default frame size; larger frames are
// refused.
const maxFrameSize = 16 << 10

// newH2Server makes the server. maxHeaderBytes bounds a request's header
// list, in HPACK's measure (each field's name and value, plus 32); Go adds
// room for ten fields' overhead to it, advertises the sum as
// SETTINGS_MAX_HEADER_LIST_SIZE and answers a larger list 431 (RFC 9113
// section 10.5.1).
func newH2Server(readHeaderTimeout time.Duration, maxHeaderBytes int) *h2Server {
	s := &h2Server{
		base: &http.Server{
			ReadHeaderTimeout: readHeaderTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			IdleTimeout:       2 * time.Minute,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams: 250,
				MaxReadFrameSize:     maxFrameSize,
			},
			ErrorLog: log.New(io.Discard, "", 0),
		},
		srv: new(http2.Server),
	}
	// Makes base.Shutdown send GOAWAY to the connections being served.
	if err := http2.ConfigureServer(s.base, s.srv); err != nil {
		panic(err) // only a TLS configuration can be refused, and there is none
	}
	return s
}

// serveConn serves c until it closes.
func (s *h2Server) serveConn(c net.Conn, handler http.Handler) {
	s.srv.ServeConn(c, &http2.ServeConnOpts{BaseConfig: s.base, Handler: handler, SawClientPreface: true})
}

// shutdown sends GOAWAY to the connections being served; they close once
// their streams are done.
func (s *h2Server) shutdown(ctx context.Context) { s.base.Shutdown(ctx) }
