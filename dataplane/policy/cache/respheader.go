package cache

import (
	"net/textproto"
	"strings"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// headerName is a response header name in the spellings it is looked up
// in. The proxy passes upstream header names on as they came, and the
// response's lookups compare names exactly, so "ETag" may be there as
// "Etag" (Go's canonical form) or "etag" (proxies that speak HTTP/2
// inside); a Cache-Control missed for its spelling would let a no-store
// response be stored.
type headerName struct {
	name  string   // the conventional spelling, the one stored
	forms []string // name, then the other spellings, once each
}

func spell(name string) headerName {
	forms := []string{name}
	for _, f := range []string{textproto.CanonicalMIMEHeaderKey(name), strings.ToLower(name)} {
		if f != forms[0] && (len(forms) < 2 || f != forms[1]) {
			forms = append(forms, f)
		}
	}
	return headerName{name, forms}
}

// values returns the header's lines in the first spelling present. The
// slice is valid until the next header call.
func (h headerName) values(x *policy.Exchange) [][]byte {
	for _, f := range h.forms {
		if v := x.ResponseHeaderValues(f); len(v) > 0 {
			return v
		}
	}
	return nil
}

// value returns the header's first line in the first spelling present.
func (h headerName) value(x *policy.Exchange) []byte {
	for _, f := range h.forms {
		if v := x.ResponseHeader(f); len(v) > 0 {
			return v
		}
	}
	return nil
}

// set replaces the header, whatever spelling it came in.
func (h headerName) set(x *policy.Exchange, value string) {
	for _, f := range h.forms[1:] {
		x.DelResponseHeader(f)
	}
	x.SetResponseHeader(h.name, value)
}

// The response headers the policy reads.
var (
	hCacheControl = spell("Cache-Control")
	hVary         = spell("Vary")
	hSetCookie    = spell("Set-Cookie")
	hExpires      = spell("Expires")
	hDate         = spell("Date")
	hAge          = spell("Age")
)

// storedHeader reports whether an entry keeps a response header: every
// one the upstream sent with the representation, except those that concern
// one exchange (Date, Set-Cookie, X-Request-ID, Content-Length, Age,
// hop-by-hop ones). Headers policies set for one answer (RateLimit-*,
// X-Cache) are left out by the caller (Exchange.IsAnswerHeader): they run
// on a hit as on a miss and set them again.
func storedHeader(name []byte) bool {
	for _, n := range notStored {
		if len(name) == len(n) && strings.EqualFold(string(name), n) {
			return false
		}
	}
	return true
}

var notStored = []string{
	"Date", "Set-Cookie", "X-Request-Id", "Content-Length", "Age", "Connection", "Keep-Alive",
	"Transfer-Encoding", "Te", "Trailer", "Upgrade", "Proxy-Authenticate", "Server", "Alt-Svc",
}
