// Package cors is the cors policy: Cross-Origin Resource Sharing as the
// Fetch standard defines it, answered at the gateway.
//
// It runs in the Identify phase, before authentication, because a preflight
// (OPTIONS with Origin and Access-Control-Request-Method) carries no
// credentials by design: the gateway answers it itself, 204 with the
// Access-Control-Allow-* headers, and the upstream never sees it. A
// preflight the policy does not allow (origin, method or a request header)
// gets 403 with the gateway's JSON error and no Access-Control-Allow-*
// headers: by the standard the browser fails the preflight on the missing
// headers alone; the status and code tell the person debugging why.
//
// Actual requests go on whatever their origin; an allowed one gets
// Access-Control-Allow-Origin (and -Credentials, -Expose-Headers) through
// SetAnswerHeader, so the headers are on every answer, the upstream's or an
// error of the gateway (a 401 or 429 a script must be able to read).
//
// Caching follows the standard's advice: when the answer is the same for
// every origin ("*" without credentials) it is sent on every response,
// with or without Origin, and nothing varies; otherwise the allowed origin
// is reflected and every response says Vary: Origin, merged into the
// upstream's own Vary rather than replacing it.
package cors

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "cors"

func init() {
	policy.Register(Name, policy.Identify, build)
}

// Header names.
const (
	hOrigin           = "Origin"
	hRequestMethod    = "Access-Control-Request-Method"
	hRequestHeaders   = "Access-Control-Request-Headers"
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hExposeHeaders    = "Access-Control-Expose-Headers"
	hMaxAge           = "Access-Control-Max-Age"
	hVary             = "Vary"
)

// preflightVary is the Vary of a preflight answer: it depends on all three
// request headers.
const preflightVary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

var (
	preflightOK      = &policy.Reject{Status: 204} // no code: an answer without a body
	errOriginRefused = &policy.Reject{Status: 403, Code: "cors_forbidden", Message: "origin not allowed by the CORS policy"}
	errMethodRefused = &policy.Reject{Status: 403, Code: "cors_forbidden", Message: "method not allowed by the CORS policy"}
	errHeaderRefused = &policy.Reject{Status: 403, Code: "cors_forbidden", Message: "request header not allowed by the CORS policy"}
)

type cors struct {
	anyOrigin bool
	// static: "*" without credentials, the same answer for every origin.
	static    bool
	exact     map[string]struct{}
	wildcards []originPattern

	anyMethod    bool
	methods      []string // upper case
	allowMethods string

	reflectHeaders bool
	headers        [][]byte
	allowHeaders   string

	exposeHeaders     string
	credentials       bool
	maxAge            string // "" for none
	preflightContinue bool
}

func build(s *Settings, _ *policy.Build) (any, error) {
	c := &cors{
		exact:             map[string]struct{}{},
		credentials:       s.Credentials,
		exposeHeaders:     strings.Join(s.ExposedHeaders, ", "),
		preflightContinue: s.PreflightContinue,
		reflectHeaders:    len(s.Headers) == 0,
	}
	origins := s.Origins
	if len(origins) == 0 {
		origins = []string{"*"}
	}
	for _, o := range origins {
		p, err := parseOrigin(o)
		if err != nil {
			return nil, err
		}
		switch {
		case p.any:
			c.anyOrigin = true
		case p.exact != "":
			c.exact[p.exact] = struct{}{}
		default:
			c.wildcards = append(c.wildcards, p)
		}
	}
	c.static = c.anyOrigin && !c.credentials

	methods := s.Methods
	if len(methods) == 0 {
		methods = DefaultMethods
	}
	for _, m := range methods {
		if m == "*" {
			c.anyMethod = true
			continue
		}
		// Methods are case-sensitive, and APIs use them in upper case.
		c.methods = append(c.methods, strings.ToUpper(m))
	}
	c.allowMethods = strings.Join(c.methods, ", ")

	var names []string
	for _, h := range s.Headers {
		if h == "*" {
			c.reflectHeaders = true
			continue
		}
		c.headers = append(c.headers, []byte(h))
		names = append(names, h)
	}
	c.allowHeaders = strings.Join(names, ", ")

	if d := s.MaxAge.D(); d > 0 {
		c.maxAge = strconv.FormatInt(int64(d/time.Second), 10)
	}
	return c, nil
}

func (c *cors) Handle(x *policy.Exchange) *policy.Reject {
	origin := x.Header(hOrigin)
	if len(origin) > 0 && string(x.Method()) == "OPTIONS" {
		if method := x.Header(hRequestMethod); len(method) > 0 {
			if c.preflightContinue {
				return nil
			}
			return c.preflight(x, origin, method)
		}
	}
	if c.static {
		x.SetAnswerHeader(hAllowOrigin, "*")
	} else {
		if !c.originAllowed(origin) {
			return nil
		}
		x.SetAnswerHeaderBytes(hAllowOrigin, origin)
		if c.credentials {
			x.SetAnswerHeader(hAllowCredentials, "true")
		}
	}
	if c.exposeHeaders != "" {
		x.SetAnswerHeader(hExposeHeaders, c.exposeHeaders)
	}
	return nil
}

// preflight answers a preflight at the gateway.
func (c *cors) preflight(x *policy.Exchange, origin, method []byte) *policy.Reject {
	x.SetAnswerHeader(hVary, preflightVary)
	if !c.originAllowed(origin) {
		return errOriginRefused
	}
	if !c.methodAllowed(method) {
		return errMethodRefused
	}
	requested := x.Header(hRequestHeaders)
	if !c.headersAllowed(requested) {
		return errHeaderRefused
	}
	if c.static {
		x.SetAnswerHeader(hAllowOrigin, "*")
	} else {
		x.SetAnswerHeaderBytes(hAllowOrigin, origin)
	}
	if c.credentials {
		x.SetAnswerHeader(hAllowCredentials, "true")
	}
	if c.anyMethod {
		x.SetAnswerHeaderBytes(hAllowMethods, method)
	} else {
		x.SetAnswerHeader(hAllowMethods, c.allowMethods)
	}
	switch {
	case c.reflectHeaders && len(requested) > 0:
		x.SetAnswerHeaderBytes(hAllowHeaders, requested)
	case !c.reflectHeaders && c.allowHeaders != "":
		x.SetAnswerHeader(hAllowHeaders, c.allowHeaders)
	}
	if c.maxAge != "" {
		x.SetAnswerHeader(hMaxAge, c.maxAge)
	}
	return preflightOK
}

// originAllowed matches an Origin header. An origin that would be
// reflected is "null" (sandboxed documents, local files) only by an
// explicit "null" entry, never by a wildcard or "*".
func (c *cors) originAllowed(origin []byte) bool {
	if len(origin) == 0 {
		return false
	}
	if _, ok := c.exact[string(origin)]; ok {
		return true
	}
	if string(origin) == "null" && !c.static {
		return false
	}
	if c.anyOrigin {
		return true
	}
	for i := range c.wildcards {
		if c.wildcards[i].matches(origin) {
			return true
		}
	}
	return false
}

// matches reports whether origin is prefix, one or more host labels, then
// suffix.
func (p *originPattern) matches(origin []byte) bool {
	n := len(origin) - len(p.suffix)
	if n <= len(p.prefix) || string(origin[:len(p.prefix)]) != p.prefix || string(origin[n:]) != p.suffix {
		return false
	}
	for _, ch := range origin[len(p.prefix):n] {
		if !hostChar(ch) {
			return false
		}
	}
	return true
}

func (c *cors) methodAllowed(method []byte) bool {
	if c.anyMethod {
		return true
	}
	for _, m := range c.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// headersAllowed checks each name of an Access-Control-Request-Headers
// list.
func (c *cors) headersAllowed(list []byte) bool {
	if c.reflectHeaders {
		return true
	}
	for len(list) > 0 {
		var name []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			name, list = list[:i], list[i+1:]
		} else {
			name, list = list, nil
		}
		name = bytes.TrimSpace(name)
		if len(name) > 0 && !c.headerAllowed(name) {
			return false
		}
	}
	return true
}

func (c *cors) headerAllowed(name []byte) bool {
	for _, h := range c.headers {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// Respond adds Origin to the response's Vary when the answer depends on
// the origin, keeping whatever the upstream listed.
func (c *cors) Respond(x *policy.Exchange) {
	if c.static {
		return
	}
	vary := x.ResponseHeader(hVary)
	if len(vary) == 0 {
		x.SetResponseHeader(hVary, hOrigin)
		return
	}
	if hasToken(vary, tokenOrigin) || hasToken(vary, tokenAny) {
		return
	}
	bp := varyBufs.Get().(*[]byte)
	b := append(append(append((*bp)[:0], vary...), ", "...), hOrigin...)
	x.SetResponseHeader(hVary, unsafe.String(unsafe.SliceData(b), len(b))) // copied by the header
	*bp = b
	varyBufs.Put(bp)
}

var varyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

var tokenOrigin, tokenAny = []byte(hOrigin), []byte("*")

// hasToken reports whether a comma-separated header value lists token,
// ignoring case.
func hasToken(v, token []byte) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(item), token) {
			return true
		}
	}
	return false
}
