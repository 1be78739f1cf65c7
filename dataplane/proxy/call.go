package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/valyala/fasthttp"
)

// Call is one GET the gateway makes on its own behalf, rather than
// forwarding the client's request: a backend call of an aggregation route.
// It goes through the service's pool (balancing, health, circuit breaker)
// and transport like Forward, with retries to another target, but its answer
// is read whole, up to MaxBody bytes, and handed back instead of streamed.
type Call struct {
	Pool    *upstream.Pool
	Clients []*fasthttp.HostClient // by Target.Index (ServiceClients.H1)
	H2      []http.RoundTripper    // set for h2c services, used instead of Clients
	// URI is the request-target: path and query.
	URI     []byte
	HashKey []byte
	// Header is sent with every attempt (CallHeader fills it); the Host is
	// the target's. It is only read, so calls may share one.
	Header *fasthttp.RequestHeader
	// Timeout bounds the whole call, retries and body included.
	Timeout time.Duration
	// MaxBody is the largest answer body accepted.
	MaxBody int

	// tried lists the targets attempted, for retries to go elsewhere; here
	// rather than on Get's stack, where the balancer would make it escape.
	tried [8]*upstream.Target
}

// CallResult is how a Call went. When Err is set, Code is the gateway's
// error code for it (CodeUpstreamTimeout, CodeUpstreamUnavailable,
// CodeNoHealthyUpstream, CodeCircuitOpen, CodeBodyTooLarge) and Status the
// upstream's status if it answered, else 0.
type CallResult struct {
	Status   int
	Body     []byte
	Target   *upstream.Target // last target tried
	Upstream time.Duration    // time spent on the call
	Err      error
	Code     string
}

// ErrAnswerTooLarge is the error of a call whose answer exceeds MaxBody.
var ErrAnswerTooLarge = errors.New("upstream answer larger than allowed")

// traceHeaders are the client's headers every call passes on, so a trace
// covers the calls made for a request.
var traceHeaders = []string{"Traceparent", "Tracestate"}

// CallHeader fills h with the headers of the calls made for the client
// request in ctx: GET, the gateway's X-Forwarded-*, X-Real-IP, X-Request-ID
// and consumer headers as Forward sets them from r, the client's W3C trace
// context and Accept: application/json. Nothing else of the client's
// request is sent: its credentials stay at the gateway.
func CallHeader(ctx *fasthttp.RequestCtx, r *Request, h *fasthttp.RequestHeader) {
	h.Reset()
	h.SetMethod(fasthttp.MethodGet)
	in := &ctx.Request.Header
	addGatewayHeaders(h, in, r)
	for _, name := range traceHeaders {
		if v := in.Peek(name); len(v) > 0 {
			h.SetBytesV(name, v)
		}
	}
	h.Set("Accept", "application/json")
}

// Get makes the call, appending the answer's body to body. Transport
// failures are retried on another target while the pool's attempts and the
// timeout allow (a GET may always be sent again); an answer of any status
// ends the call.
func Get(c *Call, body []byte) CallResult {
	var res CallResult
	start := time.Now()
	deadline := start.Add(c.Timeout)
	nTried := 0
	for attempt := 1; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if res.Target == nil {
				res.Err, res.Code = fasthttp.ErrTimeout, CodeUpstreamTimeout
			}
			break
		}
		t, err := c.Pool.Pick(c.HashKey, c.tried[:nTried])
		if err != nil {
			if res.Target == nil { // nothing tried: say why none could be
				res.Err, res.Code = err, CodeNoHealthyUpstream
				if errors.Is(err, upstream.ErrCircuitOpen) {
					res.Code = CodeCircuitOpen
				}
			}
			break
		}
		if nTried < len(c.tried) {
			c.tried[nTried] = t
			nTried++
		}
		res.Target = t
		h1, h2, err := pickClient(c.Clients, c.H2, t)
		attemptStart := time.Now()
		c.Pool.Start(t)
		var status int
		var failure upstream.Failure
		switch {
		case err != nil: // an https target could not be reached to learn its protocol
			failure = classify(err)
		case h2 != nil:
			status, body, failure, err = c.getH2(t, h2, remaining, body)
		default:
			status, body, failure, err = c.getH1(t, h1, remaining, body)
		}
		c.Pool.Done(t, upstream.Outcome{Status: status, Err: failure, Duration: time.Since(attemptStart)})
		res.Status, res.Err = status, err
		if err == nil {
			res.Code = ""
			break
		}
		res.Code = callFailureCode(err, failure)
		if failure == upstream.None || attempt >= c.Pool.Attempts() {
			break // the upstream answered (too much): another target would too
		}
	}
	res.Body = body
	res.Upstream = time.Since(start)
	return res
}

func callFailureCode(err error, f upstream.Failure) string {
	switch {
	case errors.Is(err, ErrAnswerTooLarge):
		return CodeBodyTooLarge
	case f == upstream.Timeout:
		return CodeUpstreamTimeout
	}
	_, code, _ := failureStatus(err) // a connect timeout is a timeout too
	return code
}

// getH1 is one attempt over the target's HTTP/1.1 client. The status is 0
// unless the upstream answered; failure is None when it answered, even if
// its body then broke off or was too large.
func (c *Call) getH1(t *upstream.Target, client *fasthttp.HostClient, timeout time.Duration, body []byte) (int, []byte, upstream.Failure, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	c.Header.CopyTo(&req.Header)
	req.Header.SetRequestURIBytes(c.URI)
	req.Header.SetHost(t.Host)
	req.UseHostHeader = true
	if t.Scheme == "https" {
		req.URI().SetSchemeBytes(schemeHTTPS)
	} else {
		req.URI().SetSchemeBytes(schemeHTTP)
	}
	req.SetTimeout(timeout)
	if err := client.Do(req, resp); err != nil {
		return 0, body, classifyCall(err), err
	}
	status := resp.StatusCode()
	stream := resp.BodyStream()
	if stream == nil {
		if len(resp.Body()) > c.MaxBody {
			return status, body, upstream.None, ErrAnswerTooLarge
		}
		return status, append(body, resp.Body()...), upstream.None, nil
	}
	var err error
	if cl := resp.Header.ContentLength(); cl > c.MaxBody {
		err = ErrAnswerTooLarge
	} else {
		body, err = readBounded(stream, body, c.MaxBody, cl)
	}
	// Closing without an error after the EOF gives the connection back to
	// the pool; with one, it is dropped.
	if rc, ok := stream.(fasthttp.ReadCloserWithError); ok {
		rc.CloseWithError(err) //nolint:errcheck // dropped on error either way
	}
	if err != nil && !errors.Is(err, ErrAnswerTooLarge) {
		return status, body, classifyCall(err), err
	}
	return status, body, upstream.None, err
}

// getH2 is one attempt over the target's HTTP/2 client (h2c, or https
// that chose h2).
func (c *Call) getH2(t *upstream.Target, rt http.RoundTripper, timeout time.Duration, body []byte) (int, []byte, upstream.Failure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	scheme := "http://"
	if t.Scheme == "https" {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+t.Host+string(c.URI), nil)
	if err != nil {
		return 0, body, upstream.Reset, err
	}
	// Calls share Header, and iterating a header parses its cookies (a
	// write): iterate a copy.
	h := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(h)
	c.Header.CopyTo(&h.Header)
	for k, v := range h.Header.All() {
		switch string(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		req.Header.Add(string(k), string(v))
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, body, classify(err), err
	}
	defer resp.Body.Close()
	if resp.ContentLength > int64(c.MaxBody) {
		return resp.StatusCode, body, upstream.None, ErrAnswerTooLarge
	}
	body, err = readBounded(resp.Body, body, c.MaxBody, int(resp.ContentLength))
	if err != nil && !errors.Is(err, ErrAnswerTooLarge) {
		return resp.StatusCode, body, classifyCall(err), err
	}
	return resp.StatusCode, body, upstream.None, err
}

// readBounded appends r to dst until EOF, failing with ErrAnswerTooLarge
// past limit bytes. size is the announced length, or below 0.
func readBounded(r io.Reader, dst []byte, limit, size int) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, min(max(size, 512), limit)+1) // +1: room to see the EOF
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], ErrAnswerTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
	}
}

// classifyCall sorts a failed attempt like classify, also counting a body
// read that ran out of time as a timeout.
func classifyCall(err error) upstream.Failure {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.As(err, new(*errDial)) {
		return upstream.Timeout
	}
	return classify(err)
}
