// Package httpcache holds the rules of HTTP caching (RFC 9111) the cache
// policy applies as a shared cache: the Cache-Control directives of
// requests and responses, which statuses may be stored, how long a stored
// response stays fresh, Vary, and the conditional requests a stored
// response can answer with 304.
//
// Everything works on header values as the gateway holds them ([]byte,
// several lines per header) and allocates nothing on the paths a cache hit
// takes: parsing a request's Cache-Control and checking an If-None-Match.
package httpcache

import (
	"bytes"
	"net/http"
	"net/textproto"
	"time"
)

// RequestDirectives are the Cache-Control directives of a request that a
// cache acts on.
type RequestDirectives struct {
	// NoStore: neither answer from the store nor store the answer.
	NoStore bool
	// NoCache: do not answer from the store without asking the origin
	// (this cache does not revalidate, so: a miss whose answer is stored).
	NoCache bool
	// OnlyIfCached: answer from the store or with 504.
	OnlyIfCached bool
	// MaxAge is the oldest stored response the client accepts, in
	// seconds; -1 when the request sets none.
	MaxAge int64
}

// ParseRequest reads a request's Cache-Control lines; pragma is its Pragma
// header, whose no-cache counts only when Cache-Control is absent (RFC
// 9111 section 5.4).
func ParseRequest(lines [][]byte, pragma []byte) RequestDirectives {
	d := RequestDirectives{MaxAge: -1}
	if len(lines) == 0 {
		if len(pragma) > 0 && containsToken(pragma, "no-cache") {
			d.NoCache = true
		}
		return d
	}
	for _, line := range lines {
		for rest := line; len(rest) > 0; {
			var name, value []byte
			name, value, rest = nextDirective(rest)
			switch {
			case equalFold(name, "no-store"):
				d.NoStore = true
			case equalFold(name, "no-cache"):
				d.NoCache = true
			case equalFold(name, "only-if-cached"):
				d.OnlyIfCached = true
			case equalFold(name, "max-age"):
				if n, ok := deltaSeconds(value); ok {
					d.MaxAge = n
				} else {
					d.MaxAge = 0 // unreadable: the strictest reading
				}
			}
		}
	}
	return d
}

// ResponseDirectives are the Cache-Control directives of a response that a
// shared cache acts on.
type ResponseDirectives struct {
	NoStore, NoCache, Private, Public, MustRevalidate, ProxyRevalidate bool
	// MaxAge and SMaxAge are in seconds, -1 when absent.
	MaxAge, SMaxAge int64
}

// ParseResponse reads a response's Cache-Control lines. A no-cache or
// private that names fields counts as the whole directive: this cache
// does not store responses in part.
func ParseResponse(lines [][]byte) ResponseDirectives {
	d := ResponseDirectives{MaxAge: -1, SMaxAge: -1}
	for _, line := range lines {
		for rest := line; len(rest) > 0; {
			var name, value []byte
			name, value, rest = nextDirective(rest)
			switch {
			case equalFold(name, "no-store"):
				d.NoStore = true
			case equalFold(name, "no-cache"):
				d.NoCache = true
			case equalFold(name, "private"):
				d.Private = true
			case equalFold(name, "public"):
				d.Public = true
			case equalFold(name, "must-revalidate"):
				d.MustRevalidate = true
			case equalFold(name, "proxy-revalidate"):
				d.ProxyRevalidate = true
			case equalFold(name, "max-age"):
				d.MaxAge = ageOrStale(value)
			case equalFold(name, "s-maxage"):
				d.SMaxAge = ageOrStale(value)
			}
		}
	}
	return d
}

// SharedWithAuthorization reports whether a shared cache may answer a
// request carrying Authorization with the response (RFC 9111 section 3.5).
func (d ResponseDirectives) SharedWithAuthorization() bool {
	return d.Public || d.SMaxAge >= 0 || d.MustRevalidate
}

// ageOrStale reads a freshness directive's value; one that cannot be read
// makes the response stale (RFC 9111 section 4.2.1).
func ageOrStale(v []byte) int64 {
	if n, ok := deltaSeconds(v); ok {
		return n
	}
	return 0
}

// maxDelta is the largest delta-seconds value kept (RFC 9111 section
// 1.2.2: 2^31 stands for anything larger).
const maxDelta = 1 << 31

// deltaSeconds reads a non-negative integer, possibly quoted.
func deltaSeconds(v []byte) (int64, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// Lifetime is how long a response stays fresh, and whether the response
// said so itself: s-maxage (for a shared cache), then max-age, then
// Expires minus Date (or minus now without a Date); without any of them,
// def (the policy's ttl). An Expires that cannot be read means already
// expired (RFC 9111 section 5.3).
func Lifetime(d ResponseDirectives, expires, date []byte, now time.Time, def time.Duration) (time.Duration, bool) {
	switch {
	case d.SMaxAge >= 0:
		return time.Duration(d.SMaxAge) * time.Second, true
	case d.MaxAge >= 0:
		return time.Duration(d.MaxAge) * time.Second, true
	case len(expires) > 0:
		exp, err := http.ParseTime(string(expires))
		if err != nil {
			return 0, true
		}
		base := now
		if t, err := http.ParseTime(string(date)); len(date) > 0 && err == nil {
			base = t
		}
		return min(max(0, exp.Sub(base)), maxDelta*time.Second), true
	}
	return def, false
}

// StorableStatus reports whether a response of this status may be stored
// by this cache: the statuses RFC 9110 (section 15.1) calls heuristically
// cacheable, less 206 (this cache does not combine partial responses).
func StorableStatus(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// Age reads an Age header: the seconds a response spent in caches before
// it arrived (0 when absent or unreadable).
func Age(v []byte) int64 {
	n, ok := deltaSeconds(bytes.TrimSpace(v))
	if !ok {
		return 0
	}
	return n
}

// VaryNames returns the header names a response's Vary lines list, in
// canonical form, and whether one of them is "*" (the response varies on
// something no request header tells: it is not stored).
func VaryNames(lines [][]byte) (names []string, star bool) {
	for _, line := range lines {
		for rest := line; len(rest) > 0; {
			var item []byte
			item, rest = nextItem(rest)
			switch {
			case len(item) == 0:
			case len(item) == 1 && item[0] == '*':
				star = true
			default:
				names = append(names, textproto.CanonicalMIMEHeaderKey(string(item)))
			}
		}
	}
	return names, star
}

// NoneMatch reports whether an If-None-Match value matches the stored
// response's entity tag, by weak comparison (RFC 9110 section 13.1.2):
// the stored response then answers with 304.
func NoneMatch(ifNoneMatch []byte, etag string) bool {
	if etag == "" {
		return false
	}
	if t := bytes.TrimSpace(ifNoneMatch); len(t) == 1 && t[0] == '*' {
		return true
	}
	want := weakless(etag)
	for rest := ifNoneMatch; len(rest) > 0; {
		var item []byte
		item, rest = nextItem(rest)
		if len(item) > 0 && string(weaklessBytes(item)) == want {
			return true
		}
	}
	return false
}

// NotModifiedSince reports whether a stored response last modified at
// lastModified is unchanged since If-Modified-Since (only consulted when
// the request has no If-None-Match).
func NotModifiedSince(ifModifiedSince []byte, lastModified string) bool {
	if lastModified == "" {
		return false
	}
	since, err := http.ParseTime(string(ifModifiedSince))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(lastModified)
	return err == nil && !lm.After(since)
}

func weakless(tag string) string {
	if len(tag) > 2 && tag[0] == 'W' && tag[1] == '/' {
		return tag[2:]
	}
	return tag
}

func weaklessBytes(tag []byte) []byte {
	if len(tag) > 2 && tag[0] == 'W' && tag[1] == '/' {
		return tag[2:]
	}
	return tag
}

// nextDirective splits the first directive off a Cache-Control list: its
// name, its value (unquoted when quoted; empty when none) and the rest.
func nextDirective(s []byte) (name, value, rest []byte) {
	s = trimLeft(s)
	i := 0
	for i < len(s) && s[i] != ',' && s[i] != '=' {
		i++
	}
	name = bytes.TrimSpace(s[:i])
	if i == len(s) || s[i] == ',' {
		if i < len(s) {
			i++
		}
		return name, nil, s[i:]
	}
	s = trimLeft(s[i+1:]) // after '='
	if len(s) > 0 && s[0] == '"' {
		j := 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		end := min(j+1, len(s))
		value = s[:end]
		s = s[end:]
		if k := bytes.IndexByte(s, ','); k >= 0 {
			return name, value, s[k+1:]
		}
		return name, value, nil
	}
	j := bytes.IndexByte(s, ',')
	if j < 0 {
		return name, bytes.TrimSpace(s), nil
	}
	return name, bytes.TrimSpace(s[:j]), s[j+1:]
}

// nextItem splits the first item off a comma-separated list.
func nextItem(s []byte) (item, rest []byte) {
	if i := bytes.IndexByte(s, ','); i >= 0 {
		return bytes.TrimSpace(s[:i]), s[i+1:]
	}
	return bytes.TrimSpace(s), nil
}

func trimLeft(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func containsToken(list []byte, token string) bool {
	for rest := list; len(rest) > 0; {
		var item []byte
		item, rest = nextItem(rest)
		if equalFold(item, token) {
			return true
		}
	}
	return false
}

// equalFold compares an ASCII token without regard to case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
