package engine

import (
	"math/rand/v2"

	"github.com/valyala/fasthttp"
)

const maxRequestIDLen = 128

// setRequestID keeps the client's X-Request-ID when it is a sane token and
// makes one otherwise; it also makes sure a valid W3C traceparent goes
// upstream (kept when the client sent one, created when not).
func (x *exchange) setRequestID(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	if id := h.Peek("X-Request-ID"); validRequestID(id) {
		x.reqID = append(x.reqID[:0], id...)
	} else {
		x.reqID = appendUUID(x.reqID[:0])
	}
	if !validTraceparent(h.Peek("Traceparent")) {
		var buf [55]byte
		h.SetCanonical(hdrTraceparent, appendTraceparent(buf[:0]))
	}
}

// hdrTraceparent is already in fasthttp's canonical form, so setting it skips
// normalizing the name on every request.
var hdrTraceparent = []byte("Traceparent")

func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// hexPairs holds the two hex digits of every byte value, so ids are written a
// byte, not a nibble, at a time.
var hexPairs = func() (t [512]byte) {
	for i := range 256 {
		t[2*i], t[2*i+1] = hexDigits[i>>4], hexDigits[i&0xf]
	}
	return t
}()

// appendHex appends the low digits hex digits of v; digits is even.
func appendHex(b []byte, v uint64, digits int) []byte {
	for i := digits/2 - 1; i >= 0; i-- {
		j := (v >> (uint(i) * 8)) & 0xff
		b = append(b, hexPairs[2*j], hexPairs[2*j+1])
	}
	return b
}

// appendUUID appends a random (version 4) UUID. Request ids need to be
// unique, not secret, so the runtime's fast per-thread generator is enough.
func appendUUID(b []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	b = appendHex(b, hi>>32, 8)
	b = append(b, '-')
	b = appendHex(b, (hi>>16)&0xffff, 4)
	b = append(b, '-')
	b = appendHex(b, hi&0xffff, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>48, 4)
	b = append(b, '-')
	return appendHex(b, lo&0xffffffffffff, 12)
}

// appendTraceparent appends a new W3C trace context with a random trace id
// and parent id, sampled.
func appendTraceparent(b []byte) []byte {
	b = append(b, "00-"...)
	b = appendHex(b, rand.Uint64()|1, 16)
	b = appendHex(b, rand.Uint64(), 16)
	b = append(b, '-')
	b = appendHex(b, rand.Uint64()|1, 16)
	return append(b, "-01"...)
}

// validTraceparent checks the version-00 format: 00-32hex-16hex-2hex, with
// neither id all zeros.
func validTraceparent(v []byte) bool {
	if len(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	if v[0] != '0' || v[1] != '0' {
		return false
	}
	zeroTrace, zeroParent := true, true
	for i, c := range v {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
		if c != '0' {
			if i > 2 && i < 35 {
				zeroTrace = false
			} else if i > 35 && i < 52 {
				zeroParent = false
			}
		}
	}
	return !zeroTrace && !zeroParent
}
