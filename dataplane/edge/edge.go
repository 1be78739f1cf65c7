// Package edge holds the strict checks the gateway applies to an HTTP/1.1
// request head before anything else sees it. The HTTP engine parses
// leniently in places (folded lines, odd header names); a proxy that forwards
// what it parsed leniently to a backend that parses differently is how
// request smuggling happens, so such heads are refused here, and the
// connection is closed, instead of being forwarded.
package edge

import (
	"bytes"
	"errors"
)

// Errors returned by CheckHeaders. All of them mean 400 and close.
var (
	ErrBareLineEnding   = errors.New("header line not terminated by CRLF")
	ErrObsFold          = errors.New("obsolete line folding in header")
	ErrHeaderName       = errors.New("invalid header name")
	ErrHeaderValue      = errors.New("invalid character in header value")
	ErrContentLength    = errors.New("invalid or conflicting Content-Length")
	ErrLengthAndChunked = errors.New("both Content-Length and Transfer-Encoding")
	ErrTransferEncoding = errors.New("unsupported Transfer-Encoding")
)

// Head summarizes a checked request head.
type Head struct {
	// UnderscoreNames is set when a header name contains "_": such headers
	// are dropped before forwarding, as nginx does, since some backends
	// read X_Forwarded_For as X-Forwarded-For.
	UnderscoreNames bool
}

// CheckHeaders validates the raw header block of a request (every line after
// the request line, each ending in CRLF, then an empty line) as received on
// the wire. It does not allocate.
func CheckHeaders(raw []byte) (Head, error) {
	var h Head
	var clValue []byte
	sawCL, sawTE := false, false
	for len(raw) > 0 {
		end := bytes.IndexByte(raw, '\n')
		if end <= 0 || raw[end-1] != '\r' {
			return h, ErrBareLineEnding // no LF at all, or an LF without CR
		}
		line := raw[:end-1]
		raw = raw[end+1:]
		if bytes.IndexByte(line, '\r') >= 0 {
			return h, ErrBareLineEnding // a CR inside the line
		}
		if len(line) == 0 {
			break // the empty line that ends the head
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, ErrObsFold
		}
		colon := -1
		for i, c := range line {
			if c == ':' {
				colon = i
				break
			}
			if !isTokenChar(c) {
				return h, ErrHeaderName
			}
			if c == '_' {
				h.UnderscoreNames = true
			}
		}
		if colon <= 0 {
			return h, ErrHeaderName
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range value {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return h, ErrHeaderValue
			}
		}
		switch {
		case equalFold(name, "content-length"):
			if !validContentLength(value) || (sawCL && string(value) != string(clValue)) {
				return h, ErrContentLength
			}
			sawCL, clValue = true, value
		case equalFold(name, "transfer-encoding"):
			// Only a single "chunked" is accepted: nothing else can be
			// framed the same way by every server behind the gateway.
			if sawTE || !equalFold(value, "chunked") {
				return h, ErrTransferEncoding
			}
			sawTE = true
		}
	}
	if sawCL && sawTE {
		return h, ErrLengthAndChunked
	}
	return h, nil
}

// validContentLength accepts 1 to 18 decimal digits and nothing else (no
// sign, no spaces, no list).
func validContentLength(v []byte) bool {
	if len(v) == 0 || len(v) > 18 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenChar reports whether c may appear in a header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	return tokenChars[c]
}

var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// equalFold compares ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
