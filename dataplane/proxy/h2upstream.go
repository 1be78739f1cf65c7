package proxy

import (
	"context"
	"errors"
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
// HTTP/1.1 clients they are kept across reloads.
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

// forwardH2 is Forward for services whose targets speak HTTP/2 in clear
// (gRPC). The request and the answer stream in both directions at once, and
// the upstream's trailers are passed on to HTTP/2 clients.
func forwardH2(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher) {
	up := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(up)
	prepareRequest(ctx, r, up)
	cl, hasBody := requestBody(ctx)
	// "TE: trailers" is the one TE value HTTP/2 allows, and gRPC needs it.
	trailersTE := strings.EqualFold(strings.TrimSpace(string(ctx.Request.Header.Peek("Te"))), "trailers")

	for attempt := 1; ; attempt++ {
		t := res.pick(ctx, r, fin)
		if t == nil {
			return
		}
		reqCtx, cancel := context.WithTimeout(context.Background(), r.ResponseTimeout)
		var body io.Reader
		if hasBody {
			res.body = clientBody{r: ctx.RequestBodyStream(), conn: ctx.Conn(), idle: r.BodyTimeout, limit: r.BodyLimit}
			body = &res.body
		}
		req, err := http.NewRequestWithContext(reqCtx, string(ctx.Method()), "http://"+t.Host+string(r.URI), body)
		if err != nil {
			cancel()
			res.Status, res.Code = fasthttp.StatusBadRequest, CodeBadRequest
			answerError(ctx, r, res, fin, "invalid request target")
			return
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
		req.Host = t.Host
		if r.PreserveHost {
			req.Host = string(ctx.Request.Header.Host())
		}
		if trailersTE {
			req.Header.Set("Te", "trailers")
		}
		start := time.Now()
		r.Pool.Start(t)
		resp, err := r.H2[t.Index].RoundTrip(req)
		res.Upstream = time.Since(start)
		if err != nil {
			cancel()
			if res.body.err != nil {
				r.Pool.Done(t, upstream.Outcome{Duration: res.Upstream})
				var msg string
				res.Status, res.Code, msg = bodyFailure(res.body.err)
				answerError(ctx, r, res, fin, msg)
				return
			}
			failure := h2Failure(err)
			r.Pool.Done(t, upstream.Outcome{Err: failure, Duration: res.Upstream})
			res.Err = err
			if attempt < r.Pool.Attempts() && failure == upstream.ConnectFailed {
				continue
			}
			status, code, msg := fasthttp.StatusBadGateway, CodeUpstreamUnavailable, "the upstream service is unavailable"
			if failure == upstream.Timeout {
				status, code, msg = fasthttp.StatusGatewayTimeout, CodeUpstreamTimeout, "the upstream service did not answer in time"
			}
			res.Status, res.Code = status, code
			WriteError(ctx, status, code, msg, string(r.RequestID))
			fin.Finish(int64(len(ctx.Response.Body())), nil)
			return
		}
		r.Pool.Done(t, upstream.Outcome{Status: resp.StatusCode, Duration: res.Upstream})
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
		size := int(resp.ContentLength)
		if size < 0 {
			size = -1
		}
		ctx.Response.SetBodyStream(&h2Body{resp: resp, cancel: cancel, fin: fin}, size)
		if size >= 0 {
			out.Set("Content-Length", strconv.Itoa(size))
		}
		return
	}
}

// h2Failure sorts an HTTP/2 client error like classify does for HTTP/1.1.
func h2Failure(err error) upstream.Failure {
	var de *errDial
	switch {
	case errors.As(err, &de):
		return upstream.ConnectFailed
	case errors.Is(err, context.DeadlineExceeded):
		return upstream.Timeout
	}
	return upstream.Reset
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
