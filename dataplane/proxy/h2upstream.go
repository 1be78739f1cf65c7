package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// H2Clients returns HTTP/2 clients (h2c: HTTP/2 without TLS, as gRPC
// backends speak it) for a pool's targets, indexed by Target.Index. Like the
// HTTP/1.1 clients they are kept across reloads. (HTTP/2 over TLS is in
// tlsupstream.go.)
func (t *Transport) H2Clients(pool *upstream.Pool, connectTimeout time.Duration) []http.RoundTripper {
	targets := pool.Targets()
	out := make([]http.RoundTripper, len(targets))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h2 == nil {
		t.h2 = make(map[clientKey]*http.Transport)
	}
	for _, tg := range targets {
		k := clientKey{scheme: tg.Scheme, addr: tg.Addr, connect: connectTimeout}
		c := t.h2[k]
		if c == nil {
			dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
			var protocols http.Protocols
			protocols.SetUnencryptedHTTP2(true)
			c = &http.Transport{
				Protocols: &protocols,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := dialer.DialContext(ctx, network, addr)
					if err != nil {
						return nil, &errDial{err: err}
					}
					return conn, nil
				},
				HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second},
			}
			t.h2[k] = c
		}
		out[tg.Index] = c
	}
	return out
}

// newH2Request makes the HTTP/2 request of one attempt on t from the
// prepared upstream request up: its headers (Host, framing and connection
// headers aside), the client's body, "TE: trailers" when the client sent it
// (the one TE value HTTP/2 allows, and gRPC needs it), and a context bounded
// by the response timeout, whose cancel ends the exchange.
func newH2Request(ctx *fasthttp.RequestCtx, r *Request, res *Result, up *fasthttp.Request, t *upstream.Target, cl int, hasBody bool) (*http.Request, context.CancelFunc, error) {
	scheme := "http://"
	if t.Scheme == "https" {
		scheme = "https://"
	}
	reqCtx, cancel := context.WithTimeout(context.Background(), r.ResponseTimeout)
	var body io.Reader
	if hasBody {
		body = &res.body
	}
	req, err := http.NewRequestWithContext(reqCtx, string(up.Header.Method()), scheme+t.Host+string(r.URI), body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.ContentLength = int64(cl)
	if !hasBody {
		req.ContentLength = 0
	}
	for k, v := range up.Header.All() {
		switch string(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		req.Header.Add(string(k), string(v))
	}
	req.Host = string(up.Header.Host()) // the target's, or the client's with preserve_host
	if strings.EqualFold(strings.TrimSpace(string(ctx.Request.Header.Peek("Te"))), "trailers") {
		req.Header.Set("Te", "trailers")
	}
	return req, cancel, nil
}

// answerH2 passes an HTTP/2 upstream answer on to the client: the head at
// once, the body streamed with the upstream's trailers offered at its end
// (to HTTP/2 clients), or, for a small body of known length without
// trailers, read whole as Forward does for HTTP/1.1.
func answerH2(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher, resp *http.Response, cancel context.CancelFunc) {
	res.Status = resp.StatusCode
	ctx.Response.SetStatusCode(resp.StatusCode)
	out := &ctx.Response.Header
	for k, vs := range resp.Header {
		if isHopByHop([]byte(k)) {
			continue
		}
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	if len(out.Peek("X-Request-Id")) == 0 {
		out.SetCanonical(hdrXRequestID, r.RequestID)
	}
	if ctx.Request.Header.ConnectionClose() {
		out.SetConnectionClose()
	}
	size := int(resp.ContentLength)
	if size < 0 {
		size = -1
	}
	if size >= 0 && size <= max(maxBufferedBody, r.BufferResponse) && len(resp.Trailer) == 0 {
		readWholeH2(ctx, r, res, fin, resp, cancel, size)
		return
	}
	ctx.Response.SetBodyStream(&h2Body{resp: resp, cancel: cancel, fin: fin}, size)
	if size >= 0 {
		out.Set("Content-Length", strconv.Itoa(size))
	}
}

// readWholeH2 is forwardSmallBody for an HTTP/2 answer of size bytes.
func readWholeH2(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher, resp *http.Response, cancel context.CancelFunc, size int) {
	defer cancel()
	bp := smallBodyPool.Get().(*[]byte)
	defer smallBodyPool.Put(bp)
	buf := *bp
	if size > maxBufferedBody {
		buf = make([]byte, size+1) // asked for by a policy (BufferResponse)
	}
	_, err := io.ReadFull(resp.Body, buf[:size])
	if err == nil {
		if n, perr := resp.Body.Read(buf[size : size+1]); n != 0 || perr != io.EOF {
			err = errTrailingBody
		}
	}
	resp.Body.Close()
	if err != nil {
		res.Err = err
		res.Status, res.Code = fasthttp.StatusBadGateway, CodeUpstreamUnavailable
		ctx.Response.Header.Reset()
		answerError(ctx, r, res, fin, "the upstream service is unavailable")
		return
	}
	ctx.Response.SetBody(buf[:size])
	fin.Finish(int64(size), nil)
}

// h2Body streams an HTTP/2 upstream answer to the client and, once it has
// been read to the end, offers the upstream's trailers.
type h2Body struct {
	resp   *http.Response
	cancel context.CancelFunc
	fin    Finisher
	n      int64
	done   bool
}

func (b *h2Body) Read(p []byte) (int, error) {
	n, err := b.resp.Body.Read(p)
	b.n += int64(n)
	return n, err
}

// Trailers returns the upstream's trailers; valid after the body's end.
func (b *h2Body) Trailers() http.Header { return b.resp.Trailer }

// CloseWithError implements fasthttp.ReadCloserWithError.
func (b *h2Body) CloseWithError(err error) error {
	if b.done {
		return nil
	}
	b.done = true
	cerr := b.resp.Body.Close()
	b.cancel()
	b.fin.Finish(b.n, err)
	return cerr
}
