// Package proxy is the forwarding step of the data plane: it turns a routed
// client request into an upstream request, sends it through the target's
// pooled client with retries to other targets, and streams the answer back.
// It also writes the gateway's own JSON errors.
//
// The HTTP/1.1 path uses fasthttp on both sides because, measured side by side
// with nginx on the same machine, it was the only Go engine pair that came
// close to nginx (net/http on either side cost about a third of the
// throughput). HTTP/2 upstreams (h2c targets, and https targets that choose
// h2 by ALPN, see tlsupstream.go) go through net/http's HTTP/2 transport,
// which gRPC needs: both directions stream at once and trailers come back.
// Each attempt takes the client of the target it picked, so a service may
// mix https targets that answered differently. Bodies are streamed in both
// directions, never held whole.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// Request is what the engine hands to Forward for one proxied request.
type Request struct {
	Pool    *upstream.Pool
	Clients []*fasthttp.HostClient // by Target.Index
	// H2, when set, holds HTTP/2 clients (h2c targets) used instead of Clients.
	H2 []http.RoundTripper
	// Dial opens a connection of its own to a target (WebSocket tunnels).
	Dial func(*upstream.Target) (net.Conn, error)
	// URI is the upstream request-target: the canonical path after
	// strip_path, then the client's raw query.
	URI             []byte
	HashKey         []byte
	ResponseTimeout time.Duration
	// BodyTimeout is the longest wait for the next bytes of the client's body.
	BodyTimeout  time.Duration
	PreserveHost bool
	RequestID    []byte
	ClientIP     netip.Addr
	Peer         netip.Addr
	TrustedPeer  bool // the peer's X-Forwarded-* headers are believed
	Proto        string
	// BufferResponse, when above the usual bound, is the largest announced
	// response body read whole into memory rather than streamed, for a
	// policy to see it in the response phase.
	BufferResponse int
	// BodyLimit, when above zero, is the most body bytes the client may
	// send; a longer body (chunked, or longer than announced) is cut off
	// with 413 while it streams.
	BodyLimit int64
	// ConsumerName and ConsumerGroups, when set, go upstream as
	// X-Consumer-Name and X-Consumer-Groups (the client's own copies are
	// always removed).
	ConsumerName   []byte
	ConsumerGroups []byte
}

// Result describes how a forwarded request went.
type Result struct {
	// tried lists the targets attempted, for retries to go elsewhere. It
	// lives here, in memory the caller keeps per request, because a slice
	// handed to the balancer would otherwise escape to the heap.
	tried  [8]*upstream.Target
	nTried int
	body   clientBody

	Target   *upstream.Target // last target tried; nil when none was picked
	Status   int              // status sent to the client
	Upstream time.Duration    // time until the upstream's response head
	Err      error            // transport error behind a gateway error answer
	Code     string           // gateway error code when the gateway answered itself
}

// Finisher is told when the response body has been handed to the client (or
// the client went away), with the number of body bytes sent.
type Finisher interface {
	Finish(bytes int64, err error)
}

// Forward sends the request upstream and prepares ctx.Response. On a
// transport failure it writes the gateway's JSON error into ctx.Response.
// res is filled before fin is called; fin is called exactly once: before
// Forward returns when the whole response is already in ctx.Response, or
// later when the streamed body has been written.
func Forward(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher) {
	cl, hasBody := requestBody(ctx)
	up := &ctx.Request
	if rewriteInPlace(ctx, hasBody) {
		ctx.Request.SetRequestURIBytes(r.URI)
		addGatewayHeaders(&ctx.Request.Header, &ctx.Request.Header, r)
	} else {
		up = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(up)
		prepareRequest(ctx, r, up)
		if hasBody {
			res.body = clientBody{r: requestBodyReader(ctx), conn: ctx.Conn(), idle: r.BodyTimeout, limit: r.BodyLimit}
			up.SetBodyStream(&res.body, cl)
		}
	}
	if !hasBody {
		up.Header.SetContentLength(0)
	}
	idempotent := Idempotent(ctx.Method())

	resp := fasthttp.AcquireResponse()
	attempts := r.Pool.Attempts()
	for attempt := 1; ; attempt++ {
		t := res.pick(ctx, r, fin)
		if t == nil {
			fasthttp.ReleaseResponse(resp)
			return
		}
		if !r.PreserveHost {
			up.Header.SetHost(t.Host)
		}
		c, h2, err := pickClient(r.Clients, r.H2, t)
		var h2req *http.Request
		var h2cancel context.CancelFunc
		if h2 != nil {
			if h2req, h2cancel, err = newH2Request(ctx, r, res, up, t, cl, hasBody); err != nil {
				fasthttp.ReleaseResponse(resp)
				res.Status, res.Code = fasthttp.StatusBadRequest, CodeBadRequest
				answerError(ctx, r, res, fin, "invalid request target")
				return
			}
		}
		start := time.Now()
		r.Pool.Start(t)
		var h2resp *http.Response
		switch {
		case err != nil: // an https target could not be reached to learn its protocol
		case h2 != nil:
			if h2resp, err = h2.RoundTrip(h2req); err != nil {
				h2cancel()
			}
		default:
			// The Host header set above is what goes out, on a retry too:
			// without UseHostHeader fasthttp would write the host of the URI
			// it parsed on the first attempt. The scheme must match the
			// target's client.
			up.UseHostHeader = true
			if t.Scheme == "https" {
				up.URI().SetSchemeBytes(schemeHTTPS)
			} else {
				up.URI().SetSchemeBytes(schemeHTTP)
			}
			up.SetTimeout(r.ResponseTimeout)
			err = c.Do(up, resp)
		}
		res.Upstream = time.Since(start)
		if err == nil && h2resp != nil {
			r.Pool.Done(t, upstream.Outcome{Status: h2resp.StatusCode, Duration: res.Upstream})
			res.Err = nil
			fasthttp.ReleaseResponse(resp)
			answerH2(ctx, r, res, fin, h2resp, h2cancel)
			return
		}
		if err == nil {
			r.Pool.Done(t, upstream.Outcome{Status: resp.StatusCode(), Duration: res.Upstream})
			res.Err = nil
			break
		}
		if berr := res.body.err; berr != nil {
			// The client's body broke (bad chunk framing, a cut upload): its
			// fault, not the upstream's, and the connection cannot be reused.
			r.Pool.Done(t, upstream.Outcome{Duration: res.Upstream})
			fasthttp.ReleaseResponse(resp)
			res.Err = berr
			var msg string
			res.Status, res.Code, msg = bodyFailure(berr)
			ctx.SetConnectionClose()
			answerError(ctx, r, res, fin, msg)
			return
		}
		failure := classify(err)
		r.Pool.Done(t, upstream.Outcome{Err: failure, Duration: res.Upstream})
		res.Err = err
		// A connect failure sent nothing, so any request may go elsewhere; after
		// that only an idempotent request whose body was not streamed may.
		retryable := failure == upstream.ConnectFailed || (idempotent && !hasBody)
		if attempt >= attempts || !retryable {
			fasthttp.ReleaseResponse(resp)
			var msg string
			res.Status, res.Code, msg = failureStatus(err)
			answerError(ctx, r, res, fin, msg)
			return
		}
		resp.Reset()
	}

	res.Status = resp.StatusCode()
	copyResponse(ctx, resp, r)
	if body := resp.BodyStream(); body != nil {
		if cl := resp.Header.ContentLength(); cl >= 0 && cl <= max(maxBufferedBody, r.BufferResponse) {
			forwardSmallBody(ctx, body, cl, resp, res, r, fin)
			return
		}
		sb := acquireStreamBody(body, resp, fin)
		ctx.Response.SetBodyStream(sb, resp.Header.ContentLength())
		return
	}
	ctx.Response.SetBody(resp.Body())
	fasthttp.ReleaseResponse(resp)
	fin.Finish(int64(len(ctx.Response.Body())), nil)
}

// requestBodyReader is the client's body: its stream, or the bytes the
// server already read whole (a body a policy replaced in memory).
func requestBodyReader(ctx *fasthttp.RequestCtx) io.Reader {
	if s := ctx.RequestBodyStream(); s != nil {
		return s
	}
	return bytes.NewReader(ctx.Request.Body())
}

// requestBody reports the client's body length and whether there is one: a
// Content-Length above zero or chunked framing (-1); fasthttp reports -2 for
// "no framing headers".
func requestBody(ctx *fasthttp.RequestCtx) (int, bool) {
	cl := ctx.Request.Header.ContentLength()
	return cl, cl > 0 || cl == -1
}

// pick chooses the next target, one not tried yet when there is one, and
// records it. When none can be had it answers the client (503, or the last
// attempt's failure on a retry) and returns nil.
func (res *Result) pick(ctx *fasthttp.RequestCtx, r *Request, fin Finisher) *upstream.Target {
	t, err := r.Pool.Pick(r.HashKey, res.tried[:res.nTried])
	if err == nil {
		if res.nTried < len(res.tried) {
			res.tried[res.nTried] = t
			res.nTried++
		}
		res.Target = t
		return t
	}
	msg := "no healthy upstream target"
	res.Status, res.Code = fasthttp.StatusServiceUnavailable, CodeNoHealthyUpstream
	if errors.Is(err, upstream.ErrCircuitOpen) {
		res.Code, msg = CodeCircuitOpen, "the upstream service is failing; requests are paused"
		ctx.Response.Header.Set("Retry-After", "5")
	}
	if res.Target != nil { // a retry found nothing left: report the last failure
		res.Status, res.Code, msg = failureStatus(res.Err)
	} else {
		res.Err = err
	}
	answerError(ctx, r, res, fin, msg)
	return nil
}

// maxBufferedBody is the largest announced body that is read whole before
// the answer goes out, rather than streamed: such a body usually arrived
// with the head, and answering from memory gives the upstream connection
// back at once and spares the server its streaming write path (under wrk
// with a small body that path took about 7% of the gateway's CPU time, the
// in-memory answer about 1%). Bodies without a length are always streamed.
const maxBufferedBody = 16 << 10

var smallBodyPool = sync.Pool{New: func() any { b := make([]byte, maxBufferedBody+1); return &b }}

// forwardSmallBody reads a body of cl bytes whole into ctx.Response. An
// upstream that breaks off or sends more than it announced gets a 502: the
// head has not gone out yet, so the client can still be told.
func forwardSmallBody(ctx *fasthttp.RequestCtx, body io.Reader, cl int, resp *fasthttp.Response, res *Result, r *Request, fin Finisher) {
	var buf []byte
	if cl <= maxBufferedBody {
		bp := smallBodyPool.Get().(*[]byte)
		defer smallBodyPool.Put(bp) // SetBody copies, so the buffer is free again at return
		buf = *bp
	} else {
		buf = make([]byte, cl+1) // asked for by a policy (BufferResponse)
	}
	_, err := io.ReadFull(body, buf[:cl])
	if err == nil {
		// One more read must see the EOF that marks the connection clean
		// for reuse.
		if n, perr := body.Read(buf[cl : cl+1]); n != 0 || perr != io.EOF {
			err = errTrailingBody
		}
	}
	if rc, ok := body.(fasthttp.ReadCloserWithError); ok {
		rc.CloseWithError(err) //nolint:errcheck // the connection is dropped on error either way
	}
	fasthttp.ReleaseResponse(resp)
	if err != nil {
		res.Err = err
		var msg string
		res.Status, res.Code, msg = fasthttp.StatusBadGateway, CodeUpstreamUnavailable, "the upstream service is unavailable"
		ctx.Response.Header.Reset()
		answerError(ctx, r, res, fin, msg)
		return
	}
	if cl > maxBufferedBody {
		ctx.Response.SetBodyRaw(buf[:cl]) // the buffer is this response's alone
	} else {
		ctx.Response.SetBody(buf[:cl])
	}
	fin.Finish(int64(cl), nil)
}

// rewriteInPlace reports whether the client's request can itself become the
// upstream request, saving a copy of every header: only when the gateway has
// nothing to remove from it (so it only adds headers and never reads a value
// it overwrote), the protocol and scheme are the ones sent upstream anyway,
// and a request without a body carries no empty body stream (which would
// stop the client retrying a stale pooled connection). The server reads
// nothing of the request after the handler that this changes.
func rewriteInPlace(ctx *fasthttp.RequestCtx, hasBody bool) bool {
	in := &ctx.Request
	// A request with a body takes the copy path, where the body is read
	// through clientBody so that a broken body is told from a broken upstream.
	return !hasBody && in.Header.IsHTTP11() && !ctx.IsTLS() && !in.IsBodyStream() &&
		!requestNeedsCleaning(&in.Header)
}

// clientBody passes the client's request body upstream and remembers why
// reading it failed, if it did. Each read may wait at most idle for the
// client: a long upload is fine as long as it keeps moving.
type clientBody struct {
	r     io.Reader
	conn  net.Conn
	idle  time.Duration
	limit int64 // 0: none
	n     int64
	err   error
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.conn != nil && b.idle > 0 {
		b.conn.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		b.err = errBodyTooLarge
		return 0, b.err
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

var errBodyTooLarge = errors.New("request body larger than allowed")

// bodyFailure is the answer to a client whose body broke off: too large,
// too slow or malformed.
func bodyFailure(err error) (status int, code, msg string) {
	if errors.Is(err, errBodyTooLarge) {
		return fasthttp.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body too large"
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.StatusRequestTimeout, "request_timeout", "request body not received in time"
	}
	return fasthttp.StatusBadRequest, CodeBadRequest, "malformed request body"
}

var (
	schemeHTTP  = []byte("http")
	schemeHTTPS = []byte("https")
)

// classify sorts a transport error of either client: fasthttp's for
// HTTP/1.1, net/http's (a context deadline for timeouts) for HTTP/2.
func classify(err error) upstream.Failure {
	var de *errDial
	switch {
	case errors.As(err, &de), errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, fasthttp.ErrNoFreeConns):
		return upstream.ConnectFailed
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return upstream.Timeout
	}
	return upstream.Reset
}

// failureStatus maps a transport error to the status, code and message the
// client sees: 504 when the upstream was too slow (to connect or to answer),
// 502 when it refused or broke the connection.
func failureStatus(err error) (int, string, string) {
	var de *errDial
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &de) && de.Timeout()) {
		return fasthttp.StatusGatewayTimeout, CodeUpstreamTimeout, "the upstream service did not answer in time"
	}
	return fasthttp.StatusBadGateway, CodeUpstreamUnavailable, "the upstream service is unavailable"
}

// streamBody hands a streamed upstream body to the server, which closes it
// after writing; closing returns the upstream connection to its pool (or
// drops it when the copy failed) and reports completion. It implements only
// CloseWithError, not Close: fasthttp calls both when both exist.
type streamBody struct {
	body   io.Reader
	resp   *fasthttp.Response
	fin    Finisher
	n      int64
	sawEOF bool
	closed bool
}

// acquireStreamBody wraps a streamed upstream body. It is not pooled: it may
// be closed twice (by a writer that saw an error, then by the response's
// own reset), which must be harmless, and streamed answers are the large or
// long ones, where an allocation does not count.
func acquireStreamBody(body io.Reader, resp *fasthttp.Response, fin Finisher) *streamBody {
	return &streamBody{body: body, resp: resp, fin: fin}
}

func (s *streamBody) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	s.n += int64(n)
	if err == io.EOF {
		s.sawEOF = true
	}
	return n, err
}

// CloseWithError implements fasthttp.ReadCloserWithError so that a failed
// client write is passed on and the upstream connection is not reused.
func (s *streamBody) CloseWithError(werr error) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if werr == nil && !s.sawEOF {
		// The server stops reading a fixed-size body after exactly
		// Content-Length bytes; one more read sees the EOF that tells the
		// client the connection is clean and can go back to the pool.
		var probe [1]byte
		if n, err := s.body.Read(probe[:]); n != 0 || err != io.EOF {
			werr = errTrailingBody
		}
	}
	var err error
	if rc, ok := s.body.(fasthttp.ReadCloserWithError); ok {
		err = rc.CloseWithError(werr)
	}
	fasthttp.ReleaseResponse(s.resp)
	fin, n := s.fin, s.n
	if werr == nil {
		werr = err
	}
	fin.Finish(n, werr)
	return err
}

var errTrailingBody = errors.New("upstream body longer than announced")
