package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Mux splits the connections of one listener between the HTTP/1.1 server and
// the HTTP/2 server: a TLS connection by the protocol its handshake agreed
// (ALPN "h2"), a clear one by whether it opens with the HTTP/2 connection
// preface (h2c with prior knowledge). Detection costs one goroutine hop per
// connection, not per request.
//
// The HTTP/2 server is golang.org/x/net/http2's, which net/http bundles
// (and, from Go 1.27, wraps): its ServeConn takes any net.Conn, so each
// connection is served behind an HTTP/2 guard (see h2Guard), TLS or not.
type Mux struct {
	ln      net.Listener
	timeout time.Duration
	h1      *chanListener
	handler http.Handler
	h2      *h2Server
	// guard is off only to measure what it costs.
	guard    bool
	limits   *h2Limits
	onCutoff func(reason string) // see Server.OnH2Cutoff

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{} // HTTP/2 connections being served
	served  sync.WaitGroup
}

// NewMux serves HTTP/2 connections of ln with handler; HTTP/1.1 connections
// are accepted from HTTP1Listener. detectTimeout bounds the TLS handshake or
// the wait for a connection's first bytes; maxHeaderBytes bounds an HTTP/2
// request's header list.
func NewMux(ln net.Listener, handler http.Handler, detectTimeout time.Duration, maxHeaderBytes int) *Mux {
	return &Mux{
		ln: ln, timeout: detectTimeout, h1: newChanListener(ln.Addr()), handler: handler,
		h2: newH2Server(detectTimeout, maxHeaderBytes), guard: true, limits: &defaultH2Limits,
		conns: map[net.Conn]struct{}{},
	}
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

func (m *Mux) route(conn net.Conn) {
	if m.timeout > 0 {
		conn.SetDeadline(time.Now().Add(m.timeout))
	}
	proto, buffered := http1, []byte(nil)
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			proto = neither
			if readPreface(conn) {
				proto = http2Preface
			}
		}
	} else {
		proto, buffered = sniffClear(conn)
	}
	conn.SetDeadline(time.Time{})
	switch proto {
	case http2Preface:
		m.serveHTTP2(conn, buffered)
	case http1:
		if len(buffered) > 0 {
			conn = &prefixConn{Conn: conn, prefix: buffered}
		}
		if !m.h1.deliver(conn) {
			conn.Close()
		}
	default:
		conn.Close()
	}
}

// serveHTTP2 serves an HTTP/2 connection whose preface has been read;
// buffered holds the bytes read after it.
func (m *Mux) serveHTTP2(conn net.Conn, buffered []byte) {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		conn.Close()
		return
	}
	m.conns[conn] = struct{}{}
	m.served.Add(1)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, conn)
		m.mu.Unlock()
		m.served.Done()
	}()
	served := conn
	if m.guard {
		served = newH2Guard(conn, buffered, maxFrameSize, m.limits, m.onCutoff)
	} else if len(buffered) > 0 {
		served = &prefixConn{Conn: conn, prefix: buffered}
	}
	m.h2.serveConn(served, m.handler)
}

// Shutdown stops accepting, sends GOAWAY to the HTTP/2 connections and waits
// for their streams to finish (or ctx to end, when the connections left are
// closed). The HTTP/1 server drains its own connections.
func (m *Mux) Shutdown(ctx context.Context) error {
	m.ln.Close()
	m.h1.Close()
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.h2.shutdown(ctx)
	done := make(chan struct{})
	go func() {
		m.served.Wait()
		close(done)
	}()
	// A connection that was starting as the GOAWAYs went out gets its own
	// on the next round.
	again := time.NewTicker(200 * time.Millisecond)
	defer again.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-again.C:
			m.h2.shutdown(ctx)
		case <-ctx.Done():
			m.mu.Lock()
			for c := range m.conns {
				c.Close()
			}
			m.mu.Unlock()
			<-done
			return ctx.Err()
		}
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
