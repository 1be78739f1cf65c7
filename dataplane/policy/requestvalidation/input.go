package requestvalidation

import (
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/openapi"
)

// validator is one document compiled for checking requests, shared by the
// routes of a snapshot that name it.
type validator struct {
	spec *openapi.Spec
	ops  map[*openapi3.Operation]*operation
	// all are the operations in document order; unrouted are those
	// kin-openapi's router cannot find (all of them when the router could
	// not be built).
	all      []*operation
	unrouted []*operation
	router   routers.Router
	options  openapi3filter.Options
	pool     sync.Pool
}

// operation is what a check of one operation needs, worked out once.
type operation struct {
	ref      string
	method   string
	template string
	path     pathTemplate
	route    routers.Route
	params   []*openapi3.Parameter
	// headers are the canonical names of the header parameters.
	headers []string
	cookies bool
	query   bool
	body    *openapi3.RequestBody
	// accepts lists the body's media types, for messages.
	accepts string
}

func newValidator(spec *openapi.Spec) *validator {
	v := &validator{spec: spec, ops: make(map[*openapi3.Operation]*operation, len(spec.Operations))}
	v.options = openapi3filter.Options{
		// The request goes on as the client sent it: defaults are the
		// backend's to apply.
		SkipSettingDefaults:     true,
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: spec.Doc.GetSchemaValidationOptions(),
	}
	for _, o := range spec.Operations {
		op := &operation{
			ref:      o.Ref(),
			method:   o.Method,
			template: o.Path,
			path:     compileTemplate(o.Path),
			route: routers.Route{Spec: spec.Doc, Path: o.Path, PathItem: o.PathItem,
				Method: o.Method, Operation: o.Operation},
		}
		for _, p := range o.Parameters() {
			if p.Value == nil {
				continue
			}
			op.params = append(op.params, p.Value)
			switch p.Value.In {
			case openapi3.ParameterInHeader:
				op.headers = append(op.headers, textproto.CanonicalMIMEHeaderKey(p.Value.Name))
			case openapi3.ParameterInCookie:
				op.cookies = true
			case openapi3.ParameterInQuery:
				op.query = true
			}
		}
		if rb := o.Operation.RequestBody; rb != nil && rb.Value != nil {
			op.body = rb.Value
			op.accepts = strings.Join(mediaTypes(rb.Value.Content), ", ")
		}
		v.ops[o.Operation] = op
		v.all = append(v.all, op)
		if op.path.re != nil {
			v.unrouted = append(v.unrouted, op)
		}
	}
	if r, err := spec.Router(); err == nil {
		v.router = r
	} else {
		v.unrouted = v.all
	}
	v.pool.New = func() any { return v.newScratch() }
	return v
}

// scratch is the per-request input of openapi3filter, pooled: maps and
// slices are cleared, not dropped, between requests. The strings put in
// them point into the request's buffers and into arena, and are dropped
// (cleared) before the request ends.
type scratch struct {
	req         http.Request
	url         url.URL
	input       openapi3filter.RequestValidationInput
	header      http.Header
	query       url.Values
	pathParams  map[string]string
	routeParams map[string]string
	// slots are []string reused as header and query values.
	slots [][]string
	used  int
	// arena holds unescaped values; it is sized before use and never grows
	// while strings point into it.
	arena   []byte
	body    bodyReader
	getBody func() (io.ReadCloser, error)
}

func (v *validator) newScratch() *scratch {
	sc := &scratch{
		header:     http.Header{},
		query:      url.Values{},
		pathParams: map[string]string{},
	}
	sc.req.URL = &sc.url
	sc.req.Header = sc.header
	sc.input.Request = &sc.req
	sc.input.Options = &v.options
	sc.getBody = func() (io.ReadCloser, error) {
		sc.body.off = 0
		return &sc.body, nil
	}
	return sc
}

func (v *validator) acquire() *scratch { return v.pool.Get().(*scratch) }

func (v *validator) release(sc *scratch) {
	clear(sc.header)
	clear(sc.query)
	clear(sc.pathParams)
	for i := range sc.used {
		clear(sc.slots[i])
		sc.slots[i] = sc.slots[i][:0]
	}
	sc.used = 0
	sc.arena = sc.arena[:0]
	sc.routeParams = nil
	sc.body = bodyReader{}
	sc.url.Path = ""
	sc.req.Body, sc.req.GetBody, sc.req.ContentLength, sc.req.Method = nil, nil, 0, ""
	sc.input.Route, sc.input.PathParams, sc.input.QueryParams = nil, nil, nil
	v.pool.Put(sc)
}

// slot returns an empty []string to fill with values.
func (sc *scratch) slot() []string {
	if sc.used == len(sc.slots) {
		sc.slots = append(sc.slots, make([]string, 0, 1))
	}
	sc.used++
	return sc.slots[sc.used-1][:0]
}

// keepSlot stores back a slot grown by append.
func (sc *scratch) keepSlot(s []string) { sc.slots[sc.used-1] = s }

// fillParameters gives the input what the operation's parameters read:
// path parameters (already captured), the query when it has query
// parameters, its header parameters, and the Cookie header.
func (sc *scratch) fillParameters(x *policy.Exchange, op *operation) {
	if sc.routeParams != nil {
		sc.input.PathParams = sc.routeParams
	} else {
		sc.input.PathParams = sc.pathParams
	}
	sc.input.QueryParams = sc.query
	if op.query {
		sc.parseQuery(x.RawQuery())
	}
	for _, name := range op.headers {
		sc.setHeader(name, x.Header(name))
	}
	if op.cookies {
		sc.setHeader("Cookie", x.Header("Cookie"))
	}
}

func (sc *scratch) setHeader(name string, value []byte) {
	if len(value) == 0 {
		return
	}
	s := append(sc.slot(), b2s(value))
	sc.keepSlot(s)
	sc.header[name] = s
}

// parseQuery splits a raw query into sc.query as url.ParseQuery would,
// without copying values that need no unescaping. A malformed escape keeps
// the value as sent: the schema then judges it.
func (sc *scratch) parseQuery(raw []byte) {
	if cap(sc.arena) < len(raw) {
		sc.arena = make([]byte, 0, len(raw))
	}
	for len(raw) > 0 {
		var pair []byte
		if i := bytes.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, nil
		}
		if len(pair) == 0 {
			continue
		}
		key, value := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			key, value = pair[:i], pair[i+1:]
		}
		k := sc.unescapeQuery(key)
		vals, ok := sc.query[k]
		if !ok {
			vals = sc.slot()
		}
		vals = append(vals, sc.unescapeQuery(value))
		if !ok {
			sc.keepSlot(vals)
		}
		sc.query[k] = vals
	}
}

// unescapeQuery decodes a query component into the arena, or returns it
// as it is when it has nothing to decode.
func (sc *scratch) unescapeQuery(b []byte) string {
	if bytes.IndexByte(b, '%') < 0 && bytes.IndexByte(b, '+') < 0 {
		return b2s(b)
	}
	start := len(sc.arena)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			c = unhex(b[i+1])<<4 | unhex(b[i+2])
			i += 2
		}
		sc.arena = append(sc.arena, c)
	}
	return b2s(sc.arena[start:])
}

// setBody gives the input the body read for inspection.
func (sc *scratch) setBody(x *policy.Exchange, data []byte) {
	if len(data) == 0 {
		sc.req.Body, sc.req.ContentLength = nil, 0
		return
	}
	sc.body = bodyReader{data: data}
	sc.req.Body, sc.req.GetBody, sc.req.ContentLength = &sc.body, sc.getBody, int64(len(data))
	delete(sc.header, "Content-Type")
	sc.setHeader("Content-Type", x.Header("Content-Type"))
}

// bodyReader reads a body held in memory.
type bodyReader struct {
	data []byte
	off  int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }

// pathTemplate matches a request path against an operation's path and
// captures its parameters: segment by segment when every parameter is a
// whole segment, else with a regular expression.
type pathTemplate struct {
	segs  []templateSegment
	re    *regexp.Regexp
	names []string // of re's groups
}

type templateSegment struct {
	literal string
	param   string // "" for a literal
}

var templateParam = regexp.MustCompile(`\{([^{}/]*)\}`)

func compileTemplate(template string) pathTemplate {
	var t pathTemplate
	parts := strings.Split(strings.TrimPrefix(template, "/"), "/")
	for _, p := range parts {
		if !strings.ContainsAny(p, "{}") {
			t.segs = append(t.segs, templateSegment{literal: p})
			continue
		}
		if len(p) > 2 && p[0] == '{' && p[len(p)-1] == '}' && !strings.ContainsAny(p[1:len(p)-1], "{}") {
			t.segs = append(t.segs, templateSegment{param: p[1 : len(p)-1]})
			continue
		}
		return regexTemplate(template)
	}
	return t
}

func regexTemplate(template string) pathTemplate {
	var t pathTemplate
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range templateParam.FindAllStringSubmatchIndex(template, -1) {
		b.WriteString(regexp.QuoteMeta(template[last:m[0]]))
		b.WriteString("([^/]+)")
		t.names = append(t.names, template[m[2]:m[3]])
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(template[last:]))
	b.WriteString("$")
	t.re = regexp.MustCompile(b.String())
	return t
}

// match reports whether path fits the template, storing the parameters
// (unescaped) in sc.pathParams.
func (t *pathTemplate) match(path string, sc *scratch) bool {
	if t.re != nil {
		m := t.re.FindStringSubmatch(path)
		if m == nil {
			return false
		}
		for i, name := range t.names {
			sc.pathParams[name] = sc.unescapePathValue(m[i+1])
		}
		return true
	}
	rest := strings.TrimPrefix(path, "/")
	for i, seg := range t.segs {
		last := i == len(t.segs)-1
		part := rest
		switch j := strings.IndexByte(rest, '/'); {
		case j >= 0 && last, j < 0 && !last:
			return false // more segments, or fewer, than the template
		case j >= 0:
			part, rest = rest[:j], rest[j+1:]
		}
		if seg.param == "" {
			if part != seg.literal {
				return false
			}
			continue
		}
		sc.pathParams[seg.param] = sc.unescapePathValue(part)
	}
	return true
}

// unescapePathValue decodes a path segment (the router's normal form keeps
// only reserved characters escaped).
func (sc *scratch) unescapePathValue(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// unescapePath decodes the path given to kin-openapi's router, which
// matches decoded paths (net/http's URL.Path).
func unescapePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

func mediaTypes(c openapi3.Content) []string {
	types := make([]string, 0, len(c))
	for k := range c {
		types = append(types, k)
	}
	slices.Sort(types)
	return types
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// b2s views bytes as a string without copying, for values used within the
// request whose buffers hold them.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
