package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the headers that describe one connection, not the message:
// never forwarded in either direction (RFC 9110 section 7.6.1).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// gatewaySet are the request headers the gateway writes itself; a client's
// copies are removed first so that no second line survives next to ours.
var gatewaySet = []string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Forwarded",
}

// Canonical header names, written without fasthttp re-normalizing them.
var (
	hdrXForwardedFor   = []byte("X-Forwarded-For")
	hdrXForwardedProto = []byte("X-Forwarded-Proto")
	hdrXForwardedHost  = []byte("X-Forwarded-Host")
	hdrXRealIP         = []byte("X-Real-Ip")
	hdrXRequestID      = []byte("X-Request-Id")
	hdrXConsumerName   = []byte("X-Consumer-Name")
	hdrXConsumerGroups = []byte("X-Consumer-Groups")
	protoHTTP          = []byte("http")
	protoHTTPS         = []byte("https")
)

// prepareRequest fills up from the client request: the client's headers less
// the hop-by-hop ones and any identity a client could forge, then the
// gateway's X-Forwarded-*, X-Real-IP and X-Request-ID.
//
// One pass over the client's headers tells whether anything must be removed;
// the common request has nothing to remove and pays for no deletion.
func prepareRequest(ctx *fasthttp.RequestCtx, r *Request, up *fasthttp.Request) {
	in := &ctx.Request.Header
	dirty := requestNeedsCleaning(in)
	in.CopyTo(&up.Header)
	h := &up.Header
	h.SetRequestURIBytes(r.URI)
	h.SetProtocolBytes(http11)
	if dirty {
		cleanRequest(h, in)
	}
	// Connection is a flag in fasthttp, not a list entry: clear it so the
	// upstream connection stays alive whatever the client asked for its own.
	h.ResetConnectionClose()
	addGatewayHeaders(h, in, r)
}

// addGatewayHeaders sets X-Forwarded-*, X-Real-IP, X-Request-ID and the
// consumer headers on h,
// reading what a trusted peer forwarded from in (which may be h itself when
// the client sent none of these headers).
func addGatewayHeaders(h, in *fasthttp.RequestHeader, r *Request) {
	var ipBuf [64]byte
	peerIP := r.Peer.AppendTo(ipBuf[:0])
	proto := protoHTTP
	if r.Proto == "https" {
		proto = protoHTTPS
	}
	if r.TrustedPeer {
		if prior := joinedValues(in, "X-Forwarded-For"); len(prior) > 0 {
			h.SetCanonical(hdrXForwardedFor, append(append(prior, ", "...), peerIP...))
		} else {
			h.SetCanonical(hdrXForwardedFor, peerIP)
		}
		if v := in.Peek("X-Forwarded-Proto"); len(v) > 0 {
			proto = v
		}
		host := in.Host()
		if v := in.Peek("X-Forwarded-Host"); len(v) > 0 {
			host = v
		}
		h.SetCanonical(hdrXForwardedProto, proto)
		h.SetCanonical(hdrXForwardedHost, host)
		if v := in.Peek("Forwarded"); len(v) > 0 {
			h.Set("Forwarded", string(v))
		}
	} else {
		h.SetCanonical(hdrXForwardedFor, peerIP)
		h.SetCanonical(hdrXForwardedProto, proto)
		h.SetCanonical(hdrXForwardedHost, in.Host())
	}
	h.SetCanonical(hdrXRealIP, r.ClientIP.AppendTo(ipBuf[:0]))
	h.SetCanonical(hdrXRequestID, r.RequestID)
	if len(r.ConsumerName) > 0 {
		h.SetCanonical(hdrXConsumerName, r.ConsumerName)
		if len(r.ConsumerGroups) > 0 {
			h.SetCanonical(hdrXConsumerGroups, r.ConsumerGroups)
		}
	}
}

var http11 = []byte("HTTP/1.1")

// requestNeedsCleaning reports whether the client sent any header the
// gateway removes or rewrites.
func requestNeedsCleaning(h *fasthttp.RequestHeader) bool {
	if h.ConnectionClose() {
		return true
	}
	for k := range h.All() {
		if isManaged(k) || hasUnderscore(k) {
			return true
		}
	}
	return false
}

// isManaged reports whether k is a header the gateway removes or writes
// itself. Most names a client sends (Accept, User-Agent, Host) are told
// apart by their first letter, without a comparison.
func isManaged(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	switch k[0] | 0x20 { // ASCII lower case
	case 'c', 'k', 'p', 't', 'u', 'f':
		return isHopByHop(k) || inList(k, gatewaySet)
	case 'x':
		return inList(k, gatewaySet) || bytes.EqualFold(k, hdrXRequestID) || isIdentity(k)
	}
	return false
}

// cleanRequest removes from h what the client may not send upstream.
func cleanRequest(h, in *fasthttp.RequestHeader) {
	removeConnectionListed(h, in.Peek("Connection"))
	for _, name := range hopByHop {
		h.Del(name)
	}
	for _, name := range gatewaySet {
		h.Del(name)
	}
	h.Del("X-Request-Id")
	removeForgeableHeaders(h)
}

func isHopByHop(k []byte) bool { return inList(k, hopByHop) }

func inList(k []byte, names []string) bool {
	for _, n := range names {
		if len(k) == len(n) && bytes.EqualFold(k, []byte(n)) {
			return true
		}
	}
	return false
}

func isIdentity(k []byte) bool {
	return hasPrefixFold(k, prefixConsumer) || hasPrefixFold(k, prefixAuthenticated)
}

// hasUnderscore marks header names that are dropped, as nginx does: some
// backends read X_Forwarded_For as X-Forwarded-For, which would let a client
// slip past the gateway's own X-Forwarded-For.
func hasUnderscore(k []byte) bool { return bytes.IndexByte(k, '_') >= 0 }

// removeConnectionListed drops the headers a client named in Connection:
// they are hop-by-hop for this connection only.
func removeConnectionListed(h *fasthttp.RequestHeader, list []byte) {
	for len(list) > 0 {
		var name []byte
		name, list = nextToken(list)
		if len(name) > 0 {
			h.DelBytes(name)
		}
	}
}

// nextToken splits the first element off a comma-separated header value.
func nextToken(list []byte) (token, rest []byte) {
	if i := bytes.IndexByte(list, ','); i >= 0 {
		token, rest = list[:i], list[i+1:]
	} else {
		token = list
	}
	return bytes.TrimSpace(token), rest
}

var (
	prefixConsumer      = []byte("x-consumer-")
	prefixAuthenticated = []byte("x-authenticated-")
)

// removeForgeableHeaders drops every X-Consumer-* and X-Authenticated-*
// header (only the gateway may say who the consumer is) and every name with
// an underscore (read as a dash by some backends). Headers cannot be deleted while iterating, so each match
// restarts the scan.
func removeForgeableHeaders(h *fasthttp.RequestHeader) {
	for {
		var name []byte
		for k := range h.All() {
			if isIdentity(k) || hasUnderscore(k) {
				name = append([]byte(nil), k...)
				break
			}
		}
		if name == nil {
			return
		}
		h.DelBytes(name)
	}
}

func hasPrefixFold(s, prefix []byte) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c {
			return false
		}
	}
	return true
}

func joinedValues(h *fasthttp.RequestHeader, name string) []byte {
	var out []byte
	for _, v := range h.PeekAll(name) {
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, v...)
	}
	return out
}

// copyResponse copies the upstream status and headers into the client
// response, less the hop-by-hop ones.
func copyResponse(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, r *Request) {
	out := &ctx.Response.Header
	dirty, hasID := false, false
	for k := range resp.Header.All() {
		if isHopByHop(k) {
			dirty = true
		} else if bytes.EqualFold(k, hdrXRequestID) {
			hasID = true
		}
	}
	resp.Header.CopyTo(out)
	out.ResetConnectionClose()
	if dirty {
		// Names listed in the upstream's Connection header are read from
		// resp, which stays untouched, and deleted from the copy.
		list := resp.Header.Peek("Connection")
		for len(list) > 0 {
			var name []byte
			name, list = nextToken(list)
			if len(name) > 0 {
				out.DelBytes(name)
			}
		}
		for _, name := range hopByHop {
			out.Del(name)
		}
	}
	if ctx.Request.Header.ConnectionClose() {
		out.SetConnectionClose()
	}
	if !hasID {
		out.SetCanonical(hdrXRequestID, r.RequestID)
	}
}
