package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Mux splits the connections of one listener between the HTTP/1.1 server and
// the HTTP/2 server: a TLS connection by the protocol its handshake agreed
// (ALPN "h2"), a clear one by whether it opens with the HTTP/2 connection
// preface (h2c with prior knowledge). Detection costs one goroutine hop per
// connection, not per request.
type Mux struct {
	ln      net.Listener
	timeout time.Duration
	h1      *chanListener
	h2      *http2.Server
	h2base  *http.Server
	h2opts  *http2.ServeConnOpts
	h2conns sync.WaitGroup
	mu      sync.Mutex
	closing bool
}

// NewMux serves HTTP/2 connections of ln with handler; HTTP/1.1 connections
// are accepted from HTTP1Listener. detectTimeout bounds the TLS handshake or
// the wait for a connection's first bytes.
func NewMux(ln net.Listener, handler http.Handler, detectTimeout time.Duration) *Mux {
	m := &Mux{ln: ln, timeout: detectTimeout, h1: newChanListener(ln.Addr())}
	m.h2 = &http2.Server{
		MaxConcurrentStreams: 250,
		IdleTimeout:          2 * time.Minute,
		// The protocol's default frame size; larger frames are refused.
		MaxReadFrameSize: 16 << 10,
	}
	// The base server is never started: it carries the handler and, through
	// ConfigureServer, lets Shutdown send GOAWAY to every HTTP/2 connection.
	m.h2base = &http.Server{Handler: handler, ReadHeaderTimeout: detectTimeout}
	http2.ConfigureServer(m.h2base, m.h2)
	m.h2opts = &http2.ServeConnOpts{BaseConfig: m.h2base, Handler: handler}
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

var clientPreface = []byte(http2.ClientPreface)

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
		isH2 = tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS
	} else {
		// Read until the bytes either are the preface or cannot become it.
		var buf [len(http2.ClientPreface)]byte
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
	if !isH2 {
		if !m.h1.deliver(conn) {
			conn.Close()
		}
		return
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		conn.Close()
		return
	}
	m.h2conns.Add(1)
	m.mu.Unlock()
	defer m.h2conns.Done()
	m.h2.ServeConn(conn, m.h2opts)
}

// Shutdown stops accepting, sends GOAWAY to the HTTP/2 connections and waits
// for their streams to finish (or ctx to end). The HTTP/1 server drains its
// own connections.
func (m *Mux) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.ln.Close()
	m.h1.Close()
	m.h2base.Shutdown(ctx) // triggers GOAWAY through ConfigureServer's hook
	done := make(chan struct{})
	go func() { m.h2conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
