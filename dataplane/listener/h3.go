package listener

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tollgate/tollgate/config"
	"github.com/valyala/fasthttp"
)

// HTTP3Server serves HTTP/3 over QUIC on a UDP socket beside the TLS
// listener. Its requests go through the same adapter as HTTP/2 ones, so the
// engine sees one kind of request whatever the protocol; its TLS settings
// are the TLS listener's (certificates by SNI, client certificates checked
// against client_ca), read per handshake, so a reload reaches new QUIC
// connections as it reaches new TLS ones.
type HTTP3Server struct {
	srv      *http3.Server
	tlsConf  *tls.Config
	quicConf *quic.Config
	conn     net.PacketConn
	tr       *quic.Transport
	ln       *quic.Listener
}

// NewHTTP3 configures an HTTP/3 server for handler with the edge limits of
// cfg. tlsConfig is the TLS listener's (Certificates.ServerConfig); the
// ALPN protocol "h3" is set here.
func NewHTTP3(cfg *config.Server, handler fasthttp.RequestHandler, tlsConfig *tls.Config) *HTTP3Server {
	idle := cfg.IdleTimeout.Or(config.DefaultIdleTimeout)
	h3 := func(ctx *fasthttp.RequestCtx) {
		// The adapter, made for HTTP/2, names every request HTTP/2.0.
		ctx.Request.Header.SetProtocol("HTTP/3.0")
		handler(ctx)
	}
	return &HTTP3Server{
		srv: &http3.Server{
			Handler: HTTP2Handler(h3),
			// A larger request head is answered 431.
			MaxHeaderBytes: cmp.Or(cfg.Limits.MaxHeaderBytes, config.DefaultMaxHeaderBytes),
			IdleTimeout:    idle,
		},
		tlsConf: tlsConfig,
		quicConf: &quic.Config{
			// Allow0RTT stays off: early data can be replayed by an attacker,
			// and the gateway forwards requests that are not safe to repeat.
			MaxIdleTimeout:     idle,
			MaxIncomingStreams: 250, // as the HTTP/2 server
		},
	}
}

// Listen binds addr (UDP).
func (s *HTTP3Server) Listen(addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: conn}
	// Not ListenEarly: a connection is handed over once its handshake, and
	// with it the client certificate check, is complete.
	ln, err := tr.Listen(http3.ConfigureTLSConfig(s.tlsConf), s.quicConf)
	if err != nil {
		tr.Close()
		conn.Close()
		return err
	}
	s.conn, s.tr, s.ln = conn, tr, ln
	return nil
}

// Addr returns the bound address.
func (s *HTTP3Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve accepts connections until Shutdown.
func (s *HTTP3Server) Serve() error {
	err := s.srv.ServeListener(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, tells open connections to go away (GOAWAY) and
// waits for their requests in flight to finish (or ctx to end).
func (s *HTTP3Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	// Closing the listener first refuses new connections at once; the
	// server closes whatever is still open when ctx ends.
	s.ln.Close()
	err := s.srv.Shutdown(ctx)
	s.tr.Close()
	s.conn.Close()
	return err
}

// AdvertiseHTTP3 adds to every response of handler an Alt-Svc header that
// tells clients HTTP/3 is offered on port (UDP) of the same host, so they
// can switch for their next requests. Responses coming from upstream lose
// their own Alt-Svc: for the client, the gateway is the origin.
func AdvertiseHTTP3(handler fasthttp.RequestHandler, port int) fasthttp.RequestHandler {
	name := []byte("Alt-Svc")
	value := fmt.Appendf(nil, `h3=":%d"; ma=86400`, port)
	return func(ctx *fasthttp.RequestCtx) {
		handler(ctx)
		ctx.Response.Header.SetCanonical(name, value)
	}
}
