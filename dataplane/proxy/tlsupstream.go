package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// An https target chooses its protocol by ALPN. The first request to it
// opens a connection offering h2 and http/1.1 and remembers the answer; that
// connection then serves the request, through the HTTP/2 transport when the
// target chose h2 (so gRPC over TLS streams both ways with trailers, as h2c
// does) or else through the fasthttp HTTP/1.1 client, the fast path.
//
// Every later connection offers both protocols again, so a target that
// restarted speaking the other one is noticed when the gateway reconnects:
// the connection is handed to the other client, the target is remembered
// with its new protocol, and the attempt fails as a connect failure (nothing
// was sent) for the proxy to retry, now through the right client.
const (
	protoUnknown int32 = iota
	protoHTTP1
	protoHTTP2
)

// errProtocolChanged is the connect failure of a client whose new
// connection came back speaking the other protocol.
var errProtocolChanged = errors.New("the upstream changed protocol (ALPN); retry")

// tlsUpstream is one https target: its negotiated protocol and a client for
// each answer. It is also the Transport of its HTTP/1.1 client, which is how
// the proxy finds it from Request.Clients; as such it sends requests the
// usual fasthttp way.
type tlsUpstream struct {
	t       *Transport
	addr    string
	connect time.Duration
	dialer  *net.Dialer
	tls     *tls.Config // offers h2 and http/1.1

	proto   atomic.Int32
	probeMu sync.Mutex // one probe at a time; the others wait for its answer

	spareMu    sync.Mutex
	spare      *tls.Conn // the probe's connection, for the next dial to use
	spareProto int32
	spareAt    time.Time

	h1 *fasthttp.HostClient
	h2 *http.Transport
}

func (t *Transport) newTLSUpstream(tg *upstream.Target, connect time.Duration, cfg *tls.Config) *tlsUpstream {
	u := &tlsUpstream{
		t:       t,
		addr:    tg.Addr,
		connect: connect,
		dialer:  &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
	}
	u.tls = cfg.Clone()
	u.tls.NextProtos = []string{"h2", "http/1.1"}

	u.h1 = t.newClient(tg, connect)
	u.h1.IsTLS = true // Dial hands over connections whose handshake is done
	u.h1.Dial = u.dialHTTP1
	u.h1.Transport = u

	var protocols http.Protocols
	protocols.SetHTTP2(true)
	u.h2 = &http.Transport{
		Protocols:       &protocols,
		DialTLSContext:  func(ctx context.Context, _, _ string) (net.Conn, error) { return u.dialHTTP2(ctx) },
		IdleConnTimeout: 90 * time.Second,
		HTTP2:           &http.HTTP2Config{SendPingTimeout: 30 * time.Second},
	}
	return u
}

// RoundTrip implements fasthttp.RoundTripper for the HTTP/1.1 client.
func (u *tlsUpstream) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	return fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
}

// protocol returns what the target speaks, asking it first when that is not
// known. The error is the probe's connection failure.
func (u *tlsUpstream) protocol() (int32, error) {
	if p := u.proto.Load(); p != protoUnknown {
		return p, nil
	}
	u.probeMu.Lock()
	defer u.probeMu.Unlock()
	if p := u.proto.Load(); p != protoUnknown {
		return p, nil
	}
	conn, p, err := u.handshake(context.Background())
	if err != nil {
		return protoUnknown, err
	}
	u.keepSpare(conn, p)
	u.proto.Store(p)
	return p, nil
}

// handshake opens a TLS connection to the target within the connect timeout
// and tells which protocol the target chose: HTTP/2 for h2, else HTTP/1.1
// (also when the target ignores ALPN).
func (u *tlsUpstream) handshake(ctx context.Context) (*tls.Conn, int32, error) {
	if u.connect > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, u.connect)
		defer cancel()
	}
	raw, err := u.t.dialTCP(ctx, u.addr, u.dialer)
	if err != nil {
		return nil, protoUnknown, &errDial{err: err}
	}
	conn := tls.Client(raw, u.tls)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, protoUnknown, &errDial{err: err}
	}
	if conn.ConnectionState().NegotiatedProtocol == "h2" {
		return conn, protoHTTP2, nil
	}
	return conn, protoHTTP1, nil
}

// dial makes a new connection for the client of protocol want: the probe's
// connection when it is waiting, else a new one, which goes to the other
// client when the target now speaks the other protocol.
func (u *tlsUpstream) dial(ctx context.Context, want int32) (net.Conn, error) {
	if conn := u.takeSpare(want); conn != nil {
		return conn, nil
	}
	conn, p, err := u.handshake(ctx)
	if err != nil {
		return nil, err
	}
	if p != want {
		u.keepSpare(conn, p)
		u.proto.Store(p)
		return nil, &errDial{err: errProtocolChanged}
	}
	return conn, nil
}

// dialHTTP1 is the HTTP/1.1 client's Dial.
func (u *tlsUpstream) dialHTTP1(string) (net.Conn, error) {
	return u.dial(context.Background(), protoHTTP1)
}

// dialHTTP2 is the HTTP/2 transport's DialTLSContext.
func (u *tlsUpstream) dialHTTP2(ctx context.Context) (net.Conn, error) {
	return u.dial(ctx, protoHTTP2)
}

func (u *tlsUpstream) keepSpare(conn *tls.Conn, p int32) {
	u.spareMu.Lock()
	old := u.spare
	u.spare, u.spareProto, u.spareAt = conn, p, time.Now()
	u.spareMu.Unlock()
	if old != nil {
		old.Close()
	}
}

// spareFor bounds how long the probe's connection waits for a dial: the
// request that probed normally takes it at once, and an older one may have
// been closed by the target meanwhile.
const spareFor = 2 * time.Second

// takeSpare hands over the probe's connection when it speaks p.
func (u *tlsUpstream) takeSpare(p int32) *tls.Conn {
	u.spareMu.Lock()
	conn, fresh := u.spare, time.Since(u.spareAt) < spareFor
	if conn == nil || (u.spareProto != p && fresh) {
		u.spareMu.Unlock()
		return nil
	}
	u.spare = nil
	u.spareMu.Unlock()
	if !fresh {
		conn.Close()
		return nil
	}
	return conn
}

func (u *tlsUpstream) closeIdle() {
	u.h1.CloseIdleConnections()
	u.h2.CloseIdleConnections()
	u.spareMu.Lock()
	conn := u.spare
	u.spare = nil
	u.spareMu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// pickClient returns what an attempt on t goes through: an HTTP/2 transport
// (every target of an h2c service, and https targets that chose h2) or else
// the target's HTTP/1.1 client. An https target whose protocol is not known
// yet is asked first; the error is that connection's failure. For an http
// target this is one type check on its client.
func pickClient(h1 []*fasthttp.HostClient, h2 []http.RoundTripper, t *upstream.Target) (*fasthttp.HostClient, http.RoundTripper, error) {
	if h2 != nil {
		return nil, h2[t.Index], nil
	}
	c := h1[t.Index]
	if u, ok := c.Transport.(*tlsUpstream); ok {
		return u.client()
	}
	return c, nil, nil
}

// client is pickClient for an https target.
func (u *tlsUpstream) client() (*fasthttp.HostClient, http.RoundTripper, error) {
	p, err := u.protocol()
	switch {
	case err != nil:
		return nil, nil, err
	case p == protoHTTP2:
		return nil, u.h2, nil
	}
	return u.h1, nil, nil
}
