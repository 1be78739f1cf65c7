package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// Transport keeps the clients of upstream targets so that pooled connections
// survive configuration reloads: a new snapshot that keeps a target reuses
// its client. An http target has one HTTP/1.1 client (a fasthttp.HostClient
// with its own keep-alive pool), an h2c target an HTTP/2 net/http Transport,
// and an https target a tlsUpstream holding one of each, used by what the
// target chose by ALPN.
type Transport struct {
	mu      sync.Mutex
	clients map[clientKey]*fasthttp.HostClient
	h2      map[clientKey]*http.Transport
	tls     map[clientKey]*tlsUpstream
	// TLSConfig is the base TLS configuration for https targets (tests set
	// RootCAs); a service's tls settings and the target's server name are
	// applied over it.
	TLSConfig *tls.Config
	// BaseDir is where a relative services[].tls.ca file name starts from:
	// the configuration file's directory. Empty: the working directory.
	BaseDir string
	// Dial, when set, replaces TCP dialing (benchmarks use in-memory pipes).
	Dial func(addr string) (net.Conn, error)
}

type clientKey struct {
	scheme, addr string
	connect      time.Duration
	// tls identifies a service's tls settings (with its CA's content), so
	// services that verify a target differently do not share its client.
	tls string
}

// NewTransport returns an empty transport.
func NewTransport() *Transport {
	return &Transport{
		clients: make(map[clientKey]*fasthttp.HostClient),
		h2:      make(map[clientKey]*http.Transport),
		tls:     make(map[clientKey]*tlsUpstream),
	}
}

// ServiceOptions are the settings of a service that shape its clients.
type ServiceOptions struct {
	Connect time.Duration       // connect timeout, TLS handshake included
	TLS     *config.UpstreamTLS // verification of https targets; nil: defaults
}

// ServiceClients is what a service reaches its targets with; Request and
// Call take the same fields.
type ServiceClients struct {
	// H1 holds, by Target.Index, the HTTP/1.1 client of each http and https
	// target (an https target's client also leads to its HTTP/2 transport
	// when the target chose h2). Nil for a service of h2c targets.
	H1 []*fasthttp.HostClient
	// H2 holds the HTTP/2 clients of a service of h2c targets, else nil.
	H2 []http.RoundTripper
	// Dial opens a connection of its own to a target (WebSocket tunnels),
	// TLS included for https targets.
	Dial func(*upstream.Target) (net.Conn, error)
}

// ForService returns the clients of a pool's targets, creating the missing
// ones. It fails when the service's CA file cannot be read, or when h2c
// targets are mixed with others (a request to an h2c target needs HTTP/2
// from the start, so such a service could not serve WebSocket or HTTP/1.1
// semantics consistently).
func (t *Transport) ForService(pool *upstream.Pool, o ServiceOptions) (ServiceClients, error) {
	targets := pool.Targets()
	h2c := 0
	for _, tg := range targets {
		if tg.Scheme == "h2c" {
			h2c++
		}
	}
	switch {
	case h2c > 0 && h2c == len(targets):
		return ServiceClients{H2: t.H2Clients(pool, o.Connect), Dial: t.dialer(o.Connect, nil)}, nil
	case h2c > 0:
		return ServiceClients{}, errors.New("h2c targets cannot be mixed with http or https ones")
	}
	vt, err := t.loadVerification(o.TLS)
	if err != nil {
		return ServiceClients{}, err
	}
	return ServiceClients{H1: t.clientsFor(targets, o.Connect, vt), Dial: t.dialer(o.Connect, vt)}, nil
}

// Clients returns the HTTP/1.1 clients of a pool's http and https targets,
// indexed by Target.Index, with the default verification of https targets.
func (t *Transport) Clients(pool *upstream.Pool, connectTimeout time.Duration) []*fasthttp.HostClient {
	return t.clientsFor(pool.Targets(), connectTimeout, nil)
}

func (t *Transport) clientsFor(targets []*upstream.Target, connect time.Duration, vt *verification) []*fasthttp.HostClient {
	out := make([]*fasthttp.HostClient, len(targets))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tg := range targets {
		k := clientKey{scheme: tg.Scheme, addr: tg.Addr, connect: connect}
		if tg.Scheme == "https" {
			k.tls = vt.key()
			u := t.tls[k]
			if u == nil {
				u = t.newTLSUpstream(tg, connect, t.tlsConfig(tg.Addr, vt))
				t.tls[k] = u
			}
			out[tg.Index] = u.h1
			continue
		}
		c := t.clients[k]
		if c == nil {
			c = t.newClient(tg, connect)
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
	for k, u := range t.tls {
		if !live[u.h1] {
			delete(t.tls, k)
			u.closeIdle()
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
	for _, u := range t.tls {
		u.closeIdle()
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

// verification is a service's tls settings, loaded.
type verification struct {
	roots              *x509.CertPool // nil: the base configuration's
	serverName         string
	insecureSkipVerify bool
	id                 string // for clientKey.tls
}

func (v *verification) key() string {
	if v == nil {
		return ""
	}
	return v.id
}

// loadVerification reads a service's CA file, if any. nil settings, or
// settings that change nothing, give nil.
func (t *Transport) loadVerification(s *config.UpstreamTLS) (*verification, error) {
	if s == nil || *s == (config.UpstreamTLS{}) {
		return nil, nil
	}
	v := &verification{serverName: s.ServerName, insecureSkipVerify: s.InsecureSkipVerify}
	sum := [sha256.Size]byte{}
	if s.CA != "" {
		path := s.CA
		if !filepath.IsAbs(path) && t.BaseDir != "" {
			path = filepath.Join(t.BaseDir, path)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		v.roots = x509.NewCertPool()
		if !v.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: no PEM certificate found in %s", path)
		}
		sum = sha256.Sum256(pem)
	}
	v.id = fmt.Sprintf("%x|%s|%t", sum, s.ServerName, s.InsecureSkipVerify)
	return v, nil
}

// tlsConfig is the client TLS configuration for a target address: the base
// configuration, TLS 1.2 at least, the service's verification settings, and
// the target's host as server name unless the service names another.
func (t *Transport) tlsConfig(addr string, v *verification) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.TLSConfig != nil {
		cfg = t.TLSConfig.Clone()
	}
	if v != nil {
		if v.roots != nil {
			cfg.RootCAs = v.roots
		}
		if v.serverName != "" {
			cfg.ServerName = v.serverName
		}
		cfg.InsecureSkipVerify = v.insecureSkipVerify //nolint:gosec // asked for in the configuration
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

// dialTCP opens a TCP connection to addr within ctx, through Dial when set.
func (t *Transport) dialTCP(ctx context.Context, addr string, d *net.Dialer) (net.Conn, error) {
	if t.Dial != nil {
		return t.Dial(addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}
