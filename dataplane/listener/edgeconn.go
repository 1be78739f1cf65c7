package listener

import (
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/tollgate/tollgate/dataplane/edge"
	"github.com/valyala/fasthttp"
)

const (
	// lingerTime bounds the lingering close: the client has seen the answer
	// and the end of the connection by then, unless it is not reading.
	lingerTime = 2 * time.Second
	// lingerBytes bounds what is read and dropped meanwhile. It is above what
	// the kernels' socket buffers hold (a few MiB on each side), which fill
	// up while the gateway answers without reading, so reading them does not
	// end the lingering before the client has had its chance to read.
	lingerBytes = 16 << 20
)

// standIn replaces the first byte of a bad line ending in what the server
// is given: the head it ends stays incomplete, so the server reads again
// and meets the error (an empty or CRLF-only rest would be taken for a
// client that went away).
const standIn = 'x'

type edgeListener struct{ net.Listener }

func (l edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ec := &edgeConn{Conn: c}
	if tc, ok := c.(*tls.Conn); ok {
		// The server and the request handler see a TLS connection.
		return &tlsEdgeConn{edgeConn: ec, tc: tc}, nil
	}
	return ec, nil
}

// edgeConn is an HTTP/1.1 client connection as the server reads it. It
//
//   - checks the raw bytes of each request head before the server parses
//     them (edge.Stream): a head with a line not ending in CRLF is answered
//     400 at once and never served, where the server would otherwise take a
//     bare LF for a line ending or wait for more bytes until its read
//     timeout;
//   - closes gently a connection closed in the middle of a request (the
//     gateway answered 413 from the declared length, or a policy refused the
//     request, with the body still coming): the sending side first, then
//     what the client still sends is read and dropped for a while, as nginx
//     does (lingering close). Closing at once with unread bytes would reset
//     the connection, and a client still uploading would lose the answer.
type edgeConn struct {
	net.Conn
	stream edge.Stream
	err    error // the next Read's, after a bad line ending
	// hijacked: the connection carries something else now (WebSocket).
	hijacked bool
}

type tlsEdgeConn struct {
	*edgeConn
	tc *tls.Conn
}

func (c *tlsEdgeConn) Handshake() error                     { return c.tc.Handshake() }
func (c *tlsEdgeConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

func (c *edgeConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n == 0 || c.hijacked {
		return n, err
	}
	k, serr := c.stream.Scan(p[:n])
	if serr == nil {
		return n, err
	}
	c.err = serr
	p[k] = standIn
	return k + 1, nil
}

// Close closes the connection, lingering when a request was partly read.
func (c *edgeConn) Close() error {
	if c.hijacked || c.stream.Idle() {
		return c.Conn.Close()
	}
	lingeringClose(c.Conn, lingerTime, lingerBytes)
	return nil
}

// CloseWrite lets a WebSocket tunnel end its direction to the client.
func (c *edgeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// markHijacked stops the checks on a connection the handler hijacked: what
// follows is not HTTP/1.1 any more.
func markHijacked(ctx *fasthttp.RequestCtx) {
	switch c := ctx.Conn().(type) {
	case *edgeConn:
		c.hijacked = true
	case *tlsEdgeConn:
		c.hijacked = true
	}
}

// lingeringClose closes conn after a last answer: the sending side first,
// then, once the client has had time to read, the whole. Meanwhile what the
// client sends is read and dropped, for at most wait and max bytes. Closing
// with the client's bytes unread would reset the connection, and the client
// would lose what it had not read yet.
func lingeringClose(conn net.Conn, wait time.Duration, max int64) {
	raw := tcpOf(conn)
	if cw, ok := raw.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		raw.SetReadDeadline(time.Now().Add(wait))
		io.Copy(io.Discard, io.LimitReader(raw, max))
	}
	raw.Close()
	conn.Close()
}

// tcpOf unwraps a connection to the one the bytes travel on. Under TLS no
// close_notify is sent: it could wait on a client that does not read.
func tcpOf(c net.Conn) net.Conn {
	for {
		switch w := c.(type) {
		case *tls.Conn:
			c = w.NetConn()
		case *prefixConn:
			c = w.Conn
		default:
			return c
		}
	}
}
