package policy

import (
	"bytes"
	"crypto/x509"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Exchange is the view of one request that policies see. The engine fills
// it from whatever protocol the request came in on (HTTP/2 and WebSocket
// requests are served through the same request type as HTTP/1.1), so a
// policy behaves the same on every protocol.
//
// An Exchange lives for one request and is recycled after it: a policy must
// not keep it, nor any []byte it returns, beyond the call it was given in.
type Exchange struct {
	ctx       *fasthttp.RequestCtx
	path      []byte
	route     string
	service   string
	clientIP  netip.Addr
	requestID []byte

	// Consumer is the authenticated consumer, nil until authentication
	// finds one (or when the route has no authentication).
	Consumer *Consumer
	// Credential names the credential that authenticated the consumer, as
	// the authentication policy chose (e.g. "key-auth"); for logs and usage.
	Credential string

	respHeaders []headerLine
	bodyLimit   int64
	respBuffer  int
	bodyTimeout time.Duration
	hideGroups  bool
	query       []byte
	queryBuf    []byte
	queryEdited bool
	upPath      []byte
	upPathSet   bool
}

type headerLine struct {
	name, value []byte
}

// Reset prepares x for a new request. path is the normalised request path.
func (x *Exchange) Reset(ctx *fasthttp.RequestCtx, route, service string, path []byte, client netip.Addr, requestID []byte) {
	lines, qbuf, upPath := x.respHeaders[:0], x.queryBuf[:0], x.upPath[:0]
	*x = Exchange{ctx: ctx, route: route, service: service, path: path, clientIP: client,
		requestID: requestID, respHeaders: lines, queryBuf: qbuf, upPath: upPath}
}

// SetClientQuery gives the raw query string the client sent (without "?"),
// which RawQuery returns until a policy replaces it.
func (x *Exchange) SetClientQuery(q []byte) { x.query = q }

// Clear drops the references to the finished request.
func (x *Exchange) Clear() { x.Reset(nil, "", "", nil, netip.Addr{}, nil) }

// Route and Service name the matched route and its service ("" for a mock).
func (x *Exchange) Route() string   { return x.route }
func (x *Exchange) Service() string { return x.service }

// Method is the request method.
func (x *Exchange) Method() []byte { return x.ctx.Method() }

// Host is the request's host (the Host header or HTTP/2 :authority).
func (x *Exchange) Host() []byte { return x.ctx.Request.Header.Host() }

// Path is the normalised request path, the one routing matched.
func (x *Exchange) Path() []byte { return x.path }

// Header returns the first value of a request header ("" when absent).
func (x *Exchange) Header(name string) []byte { return x.ctx.Request.Header.Peek(name) }

// HeaderValues returns every value of a request header.
func (x *Exchange) HeaderValues(name string) [][]byte { return x.ctx.Request.Header.PeekAll(name) }

// SetRequestHeader sets a header on the request sent upstream.
func (x *Exchange) SetRequestHeader(name, value string) { x.ctx.Request.Header.Set(name, value) }

// DelRequestHeader removes a header from the request sent upstream.
func (x *Exchange) DelRequestHeader(name string) { x.ctx.Request.Header.Del(name) }

// RawQuery is the query string sent upstream (without "?"), as the client
// sent it unless a policy replaced it.
func (x *Exchange) RawQuery() []byte { return x.query }

// SetRawQuery replaces the query string sent upstream (without "?"; empty
// for none). The value is copied.
func (x *Exchange) SetRawQuery(q []byte) {
	x.queryBuf = append(x.queryBuf[:0], q...)
	x.query, x.queryEdited = x.queryBuf, true
}

// QueryEdited reports whether a policy replaced the query string.
func (x *Exchange) QueryEdited() bool { return x.queryEdited }

// HideConsumerGroups keeps X-Consumer-Groups from going upstream.
func (x *Exchange) HideConsumerGroups() { x.hideGroups = true }

// ConsumerGroupsHidden reports whether HideConsumerGroups was called.
func (x *Exchange) ConsumerGroupsHidden() bool { return x.hideGroups }

// Query returns the first value of a query parameter, as the client sent
// it (SetRawQuery does not change what Query reads).
func (x *Exchange) Query(name string) []byte { return x.ctx.QueryArgs().Peek(name) }

// ContentLength is the declared body length: -1 for a chunked body, -2 for
// none declared.
func (x *Exchange) ContentLength() int { return x.ctx.Request.Header.ContentLength() }

// ClientIP is the client's address, taken from X-Forwarded-For only when
// the peer is one of server.trusted_proxies.
func (x *Exchange) ClientIP() netip.Addr { return x.clientIP }

// RequestID is the request's X-Request-ID.
func (x *Exchange) RequestID() []byte { return x.requestID }

// PeerCertificates are the client's TLS certificates, verified against
// server.tls.client_ca; nil on a clear connection or without one.
func (x *Exchange) PeerCertificates() []*x509.Certificate {
	st := x.ctx.TLSConnectionState()
	if st == nil || len(st.VerifiedChains) == 0 {
		return nil
	}
	return st.PeerCertificates
}

// LimitBody caps the request body at max bytes while it streams upstream:
// a client that sends more (chunked, or beyond what it announced) gets 413
// and its connection is closed. The smallest limit set wins.
func (x *Exchange) LimitBody(max int64) {
	if x.bodyLimit == 0 || max < x.bodyLimit {
		x.bodyLimit = max
	}
}

// BodyLimit is the cap set with LimitBody, 0 for none.
func (x *Exchange) BodyLimit() int64 { return x.bodyLimit }

// BufferResponse asks for the upstream's response body to be read whole
// into memory, when it announces at most limit bytes, so that Respond can
// see it (ResponseBody): a cache stores it, a transformation edits it.
// Larger or unannounced bodies stream as always. The largest request wins.
func (x *Exchange) BufferResponse(limit int) {
	x.respBuffer = max(x.respBuffer, limit)
}

// ResponseBufferLimit is the size set with BufferResponse, 0 for none.
func (x *Exchange) ResponseBufferLimit() int { return x.respBuffer }

// IsTLS reports whether the request came over TLS.
func (x *Exchange) IsTLS() bool { return x.ctx.IsTLS() }

// SetAnswerHeader sets a header on the response to the client, whoever
// makes it: the upstream, the gateway's error or a policy's Reject (so a 429
// still carries the rate limit headers). It replaces an upstream header of
// the same name. The value is copied, into buffers reused by later requests.
func (x *Exchange) SetAnswerHeader(name, value string) {
	x.SetAnswerHeaderBytes(name, unsafe.Slice(unsafe.StringData(value), len(value)))
}

// SetAnswerHeaderBytes is SetAnswerHeader with a byte value.
func (x *Exchange) SetAnswerHeaderBytes(name string, value []byte) {
	n := len(x.respHeaders)
	if n < cap(x.respHeaders) {
		x.respHeaders = x.respHeaders[:n+1]
	} else {
		x.respHeaders = append(x.respHeaders, headerLine{})
	}
	h := &x.respHeaders[n]
	h.name = append(h.name[:0], name...)
	h.value = append(h.value[:0], value...)
}

// ResponseStatus is the status of the response about to go out (in
// Respond).
func (x *Exchange) ResponseStatus() int { return x.ctx.Response.StatusCode() }

// ResponseHeader returns a header of the response about to go out, its
// name compared without regard to case (upstream names are kept as the
// upstream spelled them).
func (x *Exchange) ResponseHeader(name string) []byte {
	h := &x.ctx.Response.Header
	if v := h.Peek(name); v != nil {
		return v
	}
	for k, v := range h.All() {
		if len(k) == len(name) && strings.EqualFold(unsafe.String(unsafe.SliceData(k), len(k)), name) {
			return v
		}
	}
	return nil
}

// VisitResponseHeaders calls f for every header line of the response about
// to go out (Content-Type and Content-Length included), in order. f must
// not keep the slices.
func (x *Exchange) VisitResponseHeaders(f func(name, value []byte)) {
	for k, v := range x.ctx.Response.Header.All() {
		f(k, v)
	}
}

// SetResponseHeader sets a header of the response about to go out (in
// Respond).
func (x *Exchange) SetResponseHeader(name, value string) { x.ctx.Response.Header.Set(name, value) }

// DelResponseHeader removes a header of the response about to go out (in
// Respond).
func (x *Exchange) DelResponseHeader(name string) { x.ctx.Response.Header.Del(name) }

// IsAnswerHeader reports whether a policy set name with SetAnswerHeader
// for this request: a header of this answer only (RateLimit-*, X-Cache),
// which a cache must not store with the representation.
func (x *Exchange) IsAnswerHeader(name []byte) bool {
	for i := range x.respHeaders {
		if bytes.EqualFold(x.respHeaders[i].name, name) {
			return true
		}
	}
	return false
}

// applyAnswerHeaders writes the headers set with SetAnswerHeader.
func (x *Exchange) applyAnswerHeaders() {
	for i := range x.respHeaders {
		h := &x.respHeaders[i]
		x.ctx.Response.Header.SetBytesKV(h.name, h.value)
	}
}
