package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Mux splits the connections of one listener between the HTTP/1.1 server and
// the HTTP/2 server (net/http's): a TLS connection by the protocol its
// handshake agreed (ALPN "h2"), a clear one by whether it opens with the
// HTTP/2 connection preface (h2c with prior knowledge). Detection costs one
// goroutine hop per connection, not per request.
type Mux struct {
	ln      net.Listener
	timeout time.Duration
	h1      *chanListener
	h2      *chanListener
	h2srv   *http.Server
}

// NewMux serves HTTP/2 connections of ln with handler; HTTP/1.1 connections
// are accepted from HTTP1Listener. detectTimeout bounds the TLS handshake or
// the wait for a connection's first bytes.
func NewMux(ln net.Listener, handler http.Handler, detectTimeout time.Duration) *Mux {
	m := &Mux{ln: ln, timeout: detectTimeout, h1: newChanListener(ln.Addr()), h2: newChanListener(ln.Addr())}
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	m.h2srv = &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: detectTimeout,
		IdleTimeout:       2 * time.Minute,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 250,
			// The protocol's default frame size; larger frames are refused.
			MaxReadFrameSize: 16 << 10,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go m.h2srv.Serve(m.h2)
	return m
}

// HTTP1Listener yields the connections that speak HTTP/1.
func (m *Mux) HTTP1Listener() net.Listener { return m.h1 }

// Serve accepts connections until the listener is closed.
func (m *Mux) Serve() error {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			m.h1.Close()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go m.route(conn)
	}
}

// clientPreface opens every HTTP/2 connection (RFC 9113 section 3.4).
var clientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

func (m *Mux) route(conn net.Conn) {
	if m.timeout > 0 {
		conn.SetDeadline(time.Now().Add(m.timeout))
	}
	isH2 := false
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return
		}
		isH2 = tc.ConnectionState().NegotiatedProtocol == "h2"
	} else {
		// Read until the bytes either are the preface or cannot become it.
		var buf [24]byte
		n := 0
		for n < len(buf) {
			k, err := conn.Read(buf[n:])
			n += k
			if !bytes.HasPrefix(clientPreface, buf[:n]) {
				break
			}
			if err != nil {
				conn.Close()
				return
			}
		}
		isH2 = n == len(buf) && bytes.Equal(buf[:], clientPreface)
		if !isH2 && n >= 4 && bytes.HasPrefix(buf[:n], []byte("PRI ")) {
			// A broken HTTP/2 preface: "PRI" is no HTTP/1 method either.
			conn.Close()
			return
		}
		conn = &prefixConn{Conn: conn, prefix: append([]byte(nil), buf[:n]...)}
	}
	conn.SetDeadline(time.Time{})
	target := m.h1
	if isH2 {
		target = m.h2
	}
	if !target.deliver(conn) {
		conn.Close()
	}
}

// Shutdown stops accepting, sends GOAWAY to the HTTP/2 connections and waits
// for their streams to finish (or ctx to end). The HTTP/1 server drains its
// own connections.
func (m *Mux) Shutdown(ctx context.Context) error {
	m.ln.Close()
	m.h1.Close()
	return m.h2srv.Shutdown(ctx)
}

// prefixConn gives back the bytes read while detecting the protocol.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// chanListener is a net.Listener fed by the Mux.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
