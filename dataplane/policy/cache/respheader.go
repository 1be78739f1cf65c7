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

// storedHeaders are the response headers an entry keeps, joined into one
// line each: those that describe the representation and how it may be
// cached, and the security and CORS headers upstreams send with it.
// Headers that concern one exchange (Date, Set-Cookie, X-Request-ID,
// Content-Length, hop-by-hop ones) are never kept, and neither are the
// headers other policies add per request (RateLimit-*, Retry-After): they
// run on a hit as on a miss and add them again.
var storedHeaders = func() []headerName {
	var out []headerName
	for _, name := range []string{
		"Cache-Control", "Content-Type", "Content-Encoding", "Content-Language",
		"Content-Location", "Content-Disposition", "ETag", "Last-Modified", "Expires",
		"Vary", "Link", "Location", "Allow", "Accept-Ranges",
		"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
		"Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options",
		"X-Frame-Options", "Referrer-Policy", "Cross-Origin-Resource-Policy",
	} {
		out = append(out, spell(name))
	}
	return out
}()
