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

// prepareRequest fills up from the client request: the client's headers less
// the hop-by-hop ones and any identity a client could forge, then the
// gateway's X-Forwarded-*, X-Real-IP and X-Request-ID.
func prepareRequest(ctx *fasthttp.RequestCtx, r *Request, up *fasthttp.Request) {
	in := &ctx.Request.Header
	in.CopyTo(&up.Header)
	h := &up.Header
	h.SetRequestURIBytes(r.URI)
	h.SetProtocol("HTTP/1.1")

	removeConnectionListed(h, in.Peek("Connection"))
	for _, name := range hopByHop {
		h.Del(name)
	}
	removeIdentityHeaders(h)

	var ipBuf [64]byte
	peerIP := r.Peer.AppendTo(ipBuf[:0])
	if r.TrustedPeer {
		if prior := joinedValues(in, "X-Forwarded-For"); len(prior) > 0 {
			h.Del("X-Forwarded-For")
			h.SetBytesV("X-Forwarded-For", append(append(prior, ", "...), peerIP...))
		} else {
			h.SetBytesV("X-Forwarded-For", peerIP)
		}
		setIfAbsent(h, "X-Forwarded-Proto", r.Proto)
		setBytesIfAbsent(h, "X-Forwarded-Host", in.Host())
	} else {
		h.Del("Forwarded")
		h.SetBytesV("X-Forwarded-For", peerIP)
		h.Set("X-Forwarded-Proto", r.Proto)
		h.SetBytesV("X-Forwarded-Host", in.Host())
	}
	clientIP := r.ClientIP.AppendTo(ipBuf[:0])
	h.SetBytesV("X-Real-IP", clientIP)
	h.SetBytesV("X-Request-ID", r.RequestID)
}

// removeConnectionListed drops the headers a client named in Connection:
// they are hop-by-hop for this connection only.
func removeConnectionListed(h *fasthttp.RequestHeader, connection []byte) {
	for len(connection) > 0 {
		var name []byte
		if i := bytes.IndexByte(connection, ','); i >= 0 {
			name, connection = connection[:i], connection[i+1:]
		} else {
			name, connection = connection, nil
		}
		name = bytes.TrimSpace(name)
		if len(name) > 0 {
			h.DelBytes(name)
		}
	}
}

var (
	prefixConsumer      = []byte("x-consumer-")
	prefixAuthenticated = []byte("x-authenticated-")
)

// removeIdentityHeaders drops every X-Consumer-* and X-Authenticated-*
// header: only the gateway may say who the consumer is. Headers cannot be
// deleted while iterating, so each match restarts the scan; the common case
// (none sent) costs one pass and no allocation.
func removeIdentityHeaders(h *fasthttp.RequestHeader) {
	for {
		var name []byte
		for k := range h.All() {
			if hasPrefixFold(k, prefixConsumer) || hasPrefixFold(k, prefixAuthenticated) {
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

func setIfAbsent(h *fasthttp.RequestHeader, name, value string) {
	if len(h.Peek(name)) == 0 {
		h.Set(name, value)
	}
}

func setBytesIfAbsent(h *fasthttp.RequestHeader, name string, value []byte) {
	if len(h.Peek(name)) == 0 {
		h.SetBytesV(name, value)
	}
}

// copyResponse copies the upstream status and headers into the client
// response, less the hop-by-hop ones.
func copyResponse(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, r *Request) {
	out := &ctx.Response.Header
	connection := resp.Header.Peek("Connection")
	var listed [256]byte
	conn := append(listed[:0], connection...)
	resp.Header.CopyTo(out)
	out.ResetConnectionClose()
	for len(conn) > 0 {
		var name []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			name, conn = conn[:i], conn[i+1:]
		} else {
			name, conn = conn, nil
		}
		if name = bytes.TrimSpace(name); len(name) > 0 {
			out.DelBytes(name)
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	if ctx.Request.Header.ConnectionClose() {
		out.SetConnectionClose()
	}
	if len(out.Peek("X-Request-ID")) == 0 {
		out.SetBytesV("X-Request-ID", r.RequestID)
	}
}
