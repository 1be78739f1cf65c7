package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTP2Handler runs the gateway's request handler for HTTP/2 requests, which
// net/http's HTTP/2 server reads. Every protocol thus goes through the same
// engine: the HTTP/2 request becomes the same request view an HTTP/1.1
// request is, routing and policies behave the same, and the answer is
// written back as HTTP/2 frames, streamed and flushed as it comes.
func HTTP2Handler(handler fasthttp.RequestHandler) http.Handler {
	return &h2Adapter{handler: handler}
}

type h2Adapter struct {
	handler fasthttp.RequestHandler
	ctxs    sync.Pool
}

func (a *h2Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, _ := a.ctxs.Get().(*fasthttp.RequestCtx)
	if ctx == nil {
		ctx = new(fasthttp.RequestCtx)
	}
	defer func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		a.ctxs.Put(ctx)
	}()
	conn := &requestConn{remote: addrOf(r.RemoteAddr), local: localAddrOf(r)}
	if r.TLS != nil {
		ctx.Init2(&tlsRequestConn{requestConn: conn, state: r.TLS}, quietLogger{}, false)
	} else {
		ctx.Init2(conn, quietLogger{}, false)
	}
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.Header.SetRequestURI(r.RequestURI)
	req.Header.SetProtocol("HTTP/2.0")
	req.Header.SetHost(r.Host)
	for name, values := range r.Header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		// -1 (length unknown) is sent upstream chunked.
		req.SetBodyStream(r.Body, int(r.ContentLength))
	} else {
		req.Header.SetContentLength(0)
	}

	a.handler(ctx)
	writeResponse(w, &ctx.Response)
}

// writeResponse copies a response to the HTTP/2 stream. A streamed body is
// flushed after every read, so server-sent events are not held back.
func writeResponse(w http.ResponseWriter, resp *fasthttp.Response) {
	h := w.Header()
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Connection", "Transfer-Encoding", "Keep-Alive":
			continue // connection-specific: not allowed in HTTP/2
		case "Content-Length":
			if resp.IsBodyStream() && resp.Header.ContentLength() < 0 {
				continue
			}
		}
		h.Add(string(k), string(v))
	}
	w.WriteHeader(resp.StatusCode())
	if !resp.IsBodyStream() {
		w.Write(resp.Body())
		return
	}
	body := resp.BodyStream()
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	var werr error
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				break
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				werr = err
			}
			break
		}
	}
	// Trailers (gRPC's status, say) exist once the body has been read whole.
	if tb, ok := body.(interface{ Trailers() http.Header }); ok && werr == nil {
		for k, vs := range tb.Trailers() {
			for _, v := range vs {
				h.Add(http.TrailerPrefix+k, v)
			}
		}
	}
	// Closing tells the body's owner whether the copy went through, so a
	// broken copy does not hand a half-read upstream connection back.
	if rc, ok := body.(fasthttp.ReadCloserWithError); ok && werr != nil {
		rc.CloseWithError(werr)
	}
	resp.CloseBodyStream()
}

func addrOf(hostport string) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", hostport); err == nil {
		return a
	}
	return &net.TCPAddr{}
}

func localAddrOf(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return &net.TCPAddr{}
}

// requestConn stands for the HTTP/2 connection in the request view: it
// gives the addresses, and (tlsRequestConn) the TLS state, and nothing else.
// The request handler never reads from or writes to its connection.
type requestConn struct{ remote, local net.Addr }

var errNotAConn = errors.New("an HTTP/2 stream has no connection of its own")

func (c *requestConn) Read([]byte) (int, error)         { return 0, errNotAConn }
func (c *requestConn) Write([]byte) (int, error)        { return 0, errNotAConn }
func (c *requestConn) Close() error                     { return nil }
func (c *requestConn) LocalAddr() net.Addr              { return c.local }
func (c *requestConn) RemoteAddr() net.Addr             { return c.remote }
func (c *requestConn) SetDeadline(time.Time) error      { return nil }
func (c *requestConn) SetReadDeadline(time.Time) error  { return nil }
func (c *requestConn) SetWriteDeadline(time.Time) error { return nil }

type tlsRequestConn struct {
	*requestConn
	state *tls.ConnectionState
}

func (c *tlsRequestConn) Handshake() error                     { return nil }
func (c *tlsRequestConn) ConnectionState() tls.ConnectionState { return *c.state }
