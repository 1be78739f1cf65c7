package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// Transport keeps one HTTP/1.1 client (a fasthttp.HostClient with its own
// keep-alive pool) per upstream address, so that pooled connections survive
// configuration reloads: a new snapshot that keeps a target reuses its client.
type Transport struct {
	mu      sync.Mutex
	clients map[clientKey]*fasthttp.HostClient
	h2      map[clientKey]*http.Transport
	// TLSConfig is the base TLS configuration for https targets (tests set
	// RootCAs); ServerName is filled per target.
	TLSConfig *tls.Config
	// Dial, when set, replaces TCP dialing (benchmarks use in-memory pipes).
	Dial func(addr string) (net.Conn, error)
}

type clientKey struct {
	scheme, addr string
	connect      time.Duration
}

// NewTransport returns an empty transport.
func NewTransport() *Transport {
	return &Transport{clients: make(map[clientKey]*fasthttp.HostClient)}
}

// Clients returns the clients for a pool's targets, indexed by Target.Index,
// creating the missing ones.
func (t *Transport) Clients(pool *upstream.Pool, connectTimeout time.Duration) []*fasthttp.HostClient {
	targets := pool.Targets()
	out := make([]*fasthttp.HostClient, len(targets))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tg := range targets {
		k := clientKey{scheme: tg.Scheme, addr: tg.Addr, connect: connectTimeout}
		c := t.clients[k]
		if c == nil {
			c = t.newClient(tg, connectTimeout)
			t.clients[k] = c
		}
		out[tg.Index] = c
	}
	return out
}

// Retain closes the idle connections of every client not in keep and forgets
// it. Requests still running on an older snapshot keep their pointer and
// finish normally; their connections are closed when they go idle.
func (t *Transport) Retain(h1 [][]*fasthttp.HostClient, h2 [][]http.RoundTripper) {
	live := make(map[any]bool)
	for _, cs := range h1 {
		for _, c := range cs {
			live[c] = true
		}
	}
	for _, cs := range h2 {
		for _, c := range cs {
			live[c] = true
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, c := range t.clients {
		if !live[c] {
			delete(t.clients, k)
			c.CloseIdleConnections()
		}
	}
	for k, c := range t.h2 {
		if !live[c] {
			delete(t.h2, k)
			c.CloseIdleConnections()
		}
	}
}

// CloseIdle closes every idle upstream connection.
func (t *Transport) CloseIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.clients {
		c.CloseIdleConnections()
	}
	for _, c := range t.h2 {
		c.CloseIdleConnections()
	}
}

// errDial marks a failure to establish the connection: nothing of the request
// was sent, so it is always safe to try another target.
type errDial struct{ err error }

func (e *errDial) Error() string { return "connect: " + e.err.Error() }
func (e *errDial) Unwrap() error { return e.err }

// Timeout reports whether the dial timed out.
func (e *errDial) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

func (t *Transport) newClient(tg *upstream.Target, connectTimeout time.Duration) *fasthttp.HostClient {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	c := &fasthttp.HostClient{
		Addr: tg.Addr,
		Dial: func(addr string) (net.Conn, error) {
			dial := t.Dial
			if dial == nil {
				dial = func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }
			}
			conn, err := dial(addr)
			if err != nil {
				return nil, &errDial{err: err}
			}
			return conn, nil
		},
		// The proxy decides retries itself (to another target, and never after
		// a body was sent); the client only retries a request without a body on
		// a pooled connection that the upstream had already closed.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryStaleConn,
		MaxConns:                  4096,
		MaxConnWaitTimeout:        connectTimeout,
		// Below the common upstream keep-alive timeouts (nginx 75s, Go 90s...
		// but some use 5s), so we rarely reuse a connection being closed.
		MaxIdleConnDuration:           4 * time.Second,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		StreamResponseBody:            true,
	}
	if tg.Scheme == "https" {
		c.IsTLS = true
		c.TLSConfig = t.tlsConfig(tg.Addr)
	}
	return c
}

// retryStaleConn lets the client retry once when a reused keep-alive
// connection turns out to be closed before any response byte, and only for an
// idempotent request without a body stream: one that can be sent again safely.
func retryStaleConn(req *fasthttp.Request, attempts int, err error) (bool, bool) {
	if attempts > 1 || req.IsBodyStream() || !Idempotent(req.Header.Method()) {
		return false, false
	}
	return false, errors.Is(err, fasthttp.ErrConnectionClosed)
}

// Idempotent reports whether a request with this method may be sent twice.
func Idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		return true
	}
	return false
}

// tlsConfig is the client TLS configuration for a target address: the base
// configuration, TLS 1.2 at least, with the target's host as server name.
func (t *Transport) tlsConfig(addr string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.TLSConfig != nil {
		cfg = t.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	return cfg
}
