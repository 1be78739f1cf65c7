package xmladapter

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/router"
)

// Bounds and defaults.
const (
	// DefaultMaxBodyBytes is the largest body converted, either way, when
	// max_body_bytes is not set.
	DefaultMaxBodyBytes = 1 << 20
	maxBodyBytesLimit   = 64 << 20
	// DefaultMaxDepth bounds the nesting of a converted document.
	DefaultMaxDepth = 64
	maxDepthLimit   = 1000
	// DefaultMaxElements bounds the elements and attributes of an XML
	// answer.
	DefaultMaxElements = 50000
	maxElementsLimit   = 10_000_000
	// DefaultFaultStatus is the status of the error a SOAP Fault becomes.
	DefaultFaultStatus = 502
)

// Settings are xml-adapter's settings. At least one of the two is set.
type Settings struct {
	// Request converts JSON requests (or their parameters) to XML or SOAP.
	Request *RequestSettings `yaml:"request"`
	// Response converts XML or SOAP answers to JSON.
	Response *ResponseSettings `yaml:"response"`
}

// RequestSettings convert the request on its way upstream.
type RequestSettings struct {
	// To is what the backend expects: "xml" or "soap".
	To string `yaml:"to"`
	// Root is the element the JSON body becomes the content of (for SOAP,
	// the operation: "GetUser"). Not needed with BodyTemplate.
	Root string `yaml:"root"`
	// Namespace is Root's namespace URI. Without Prefix it is the default
	// namespace (children are in it too); with Prefix only Root is
	// qualified, as for schemas with elementFormDefault="unqualified".
	Namespace string `yaml:"namespace"`
	Prefix    string `yaml:"prefix"`
	// SOAPVersion is "1.1" (default) or "1.2"; SOAPAction the operation's
	// action URI.
	SOAPVersion string `yaml:"soap_version"`
	SOAPAction  string `yaml:"soap_action"`
	// BodyTemplate, when set, is the XML written instead of the automatic
	// conversion (the SOAP Body's content for soap), with "{name}"
	// placeholders for request values.
	BodyTemplate string `yaml:"body_template"`
	// ParamsFrom makes elements of the request's parameters: "query",
	// "path" or a list of both. A request without a body becomes a POST
	// whose body is made of them.
	ParamsFrom any `yaml:"params_from"`
	// Params, when set, are the only parameters taken, in this order.
	Params []string `yaml:"params"`
	// PathPattern reads the path parameters: "/users/{id}" (as in a
	// route's paths).
	PathPattern string `yaml:"path_pattern"`
	// Endpoint is the upstream path every request of the route is sent to
	// ("/UserService.asmx"), in place of the route's own.
	Endpoint string `yaml:"endpoint"`
	// MaxBodyBytes is the largest JSON body converted (default 1 MiB);
	// larger ones get 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxDepth bounds the JSON body's nesting (default 64).
	MaxDepth int `yaml:"max_depth"`
}

// ResponseSettings convert the answer on its way to the client.
type ResponseSettings struct {
	// From is what the backend answers: "xml" or "soap" (default: the
	// request's To).
	From string `yaml:"from"`
	// MaxBodyBytes is the largest answer converted (default 1 MiB); larger
	// ones go out untouched.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Arrays are element paths ("users/user") that are always JSON arrays,
	// even with one element or none.
	Arrays []string `yaml:"arrays"`
	// StripNamespaces drops namespace prefixes from names and namespace
	// declarations from attributes (default true).
	StripNamespaces *bool `yaml:"strip_namespaces"`
	// Types maps element or attribute paths to "number", "boolean" or
	// "string" (the default for every value).
	Types map[string]string `yaml:"types"`
	// Select is an element path below the answer's top element whose
	// content is the JSON answer ("GetUserResult").
	Select string `yaml:"select"`
	// FaultStatus is the status of the error a SOAP Fault becomes (default
	// 502).
	FaultStatus int `yaml:"fault_status"`
	// MaxDepth and MaxElements bound the XML read (defaults 64 and 50000;
	// attributes count as elements).
	MaxDepth    int `yaml:"max_depth"`
	MaxElements int `yaml:"max_elements"`
}

// Validate reports every setting that cannot be applied.
func (s *Settings) Validate() []config.FieldError {
	_, errs := compile(s)
	return errs
}

// fieldErrors collects problems under a settings path.
type fieldErrors struct {
	errs []config.FieldError
}

func (f *fieldErrors) add(path, format string, args ...any) {
	f.errs = append(f.errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// compile checks s and builds the policy from it.
func compile(s *Settings) (*adapter, []config.FieldError) {
	var f fieldErrors
	a := &adapter{}
	if s.Request == nil && s.Response == nil {
		f.add("", "set request, response or both: there is nothing to convert")
	}
	if s.Request != nil {
		a.req = compileRequest(s.Request, &f)
	}
	if s.Response != nil {
		from := s.Response.From
		if from == "" && s.Request != nil && (s.Request.To == kindXML || s.Request.To == kindSOAP) {
			from = s.Request.To
		}
		a.resp = compileResponse(s.Response, from, &f)
	}
	return a, f.errs
}

// Kinds of XML a backend speaks.
const (
	kindXML  = "xml"
	kindSOAP = "soap"
)

func compileRequest(s *RequestSettings, f *fieldErrors) *requestConv {
	r := &requestConv{}
	switch s.To {
	case kindXML, kindSOAP:
	case "":
		f.add("request.to", "required: xml or soap")
	default:
		f.add("request.to", "%q is neither xml nor soap", s.To)
	}
	r.soap = s.To == kindSOAP
	r.version = soap11
	switch s.SOAPVersion {
	case "", "1.1":
	case "1.2":
		r.version = soap12
	default:
		f.add("request.soap_version", "%q is not a SOAP version: 1.1 or 1.2", s.SOAPVersion)
	}
	if !r.soap && s.To != "" {
		if s.SOAPVersion != "" {
			f.add("request.soap_version", "only for to: soap")
		}
		if s.SOAPAction != "" {
			f.add("request.soap_action", "only for to: soap")
		}
	}
	if strings.ContainsAny(s.SOAPAction, "\"\\\r\n") || strings.ContainsFunc(s.SOAPAction, isControl) {
		f.add("request.soap_action", "%q: an action URI has no quotes, backslashes or control characters", s.SOAPAction)
	}
	r.setHeaders(s.SOAPAction)

	if s.BodyTemplate == "" {
		switch {
		case s.Root == "":
			f.add("request.root", "required (the element the JSON body becomes the content of), unless body_template is set")
		case !isNCName(s.Root):
			f.add("request.root", "%q is not an XML element name (no prefix: set prefix for one)", s.Root)
		}
	} else if s.Root != "" {
		f.add("request.root", "body_template writes the root element itself: set one or the other")
	}
	if s.Namespace != "" {
		if u, err := url.Parse(s.Namespace); err != nil || u.Scheme == "" || strings.ContainsFunc(s.Namespace, isSpaceOrControl) {
			f.add("request.namespace", "%q is not an absolute URI (\"http://...\" or \"urn:...\")", s.Namespace)
		}
	}
	switch {
	case s.Prefix == "":
	case s.Namespace == "":
		f.add("request.prefix", "a prefix needs a namespace")
	case !isNCName(s.Prefix) || strings.HasPrefix(strings.ToLower(s.Prefix), "xml"):
		f.add("request.prefix", "%q is not a namespace prefix (a name without ':', not starting with xml)", s.Prefix)
	case r.soap && s.Prefix == envelopePrefix:
		f.add("request.prefix", "%q is the SOAP envelope's own prefix: choose another", s.Prefix)
	}
	if s.BodyTemplate != "" && (s.Namespace != "" || s.Prefix != "") {
		f.add("request.namespace", "body_template declares its own namespaces: set them there")
	}
	r.root = compileRoot(s.Root, s.Namespace, s.Prefix)

	r.maxBody = limitSetting(f, "request.max_body_bytes", s.MaxBodyBytes, DefaultMaxBodyBytes, maxBodyBytesLimit)
	r.maxDepth = limitSetting(f, "request.max_depth", s.MaxDepth, DefaultMaxDepth, maxDepthLimit)

	r.paramsFrom = paramSources(s.ParamsFrom, f)
	if r.paramsFrom&fromPath != 0 {
		if s.PathPattern == "" {
			f.add("request.path_pattern", "params_from: path needs the pattern to read them with, e.g. \"/users/{id}\"")
		} else if rt, err := compilePathPattern(s.PathPattern); err != nil {
			f.add("request.path_pattern", "%v", err)
		} else {
			r.pathRouter = rt
		}
	} else if s.PathPattern != "" {
		f.add("request.path_pattern", "only read with params_from: path")
	}
	if len(s.Params) > 0 && r.paramsFrom == 0 {
		f.add("request.params", "only used with params_from")
	}
	for i, name := range s.Params {
		if !isNCName(name) {
			f.add(fmt.Sprintf("request.params[%d]", i), "%q is not an XML element name", name)
		}
		if slices.Contains(s.Params[:i], name) {
			f.add(fmt.Sprintf("request.params[%d]", i), "%q is listed twice", name)
		}
	}
	r.params = slices.Clone(s.Params)
	if r.paramsFrom != 0 && !editorAvailable {
		f.add("request.params_from", "this gateway cannot give a body to a request that came without one")
	}

	if s.Endpoint != "" {
		norm, err := router.NormalizePathString(s.Endpoint)
		switch {
		case err != nil:
			f.add("request.endpoint", "%q is not a path: %v", s.Endpoint, err)
		case norm != s.Endpoint:
			f.add("request.endpoint", "%q is not in canonical form; write %q", s.Endpoint, norm)
		case !editorAvailable:
			f.add("request.endpoint", "this gateway cannot change the upstream path")
		default:
			r.endpoint = s.Endpoint
		}
	}

	if s.BodyTemplate != "" {
		t, err := compileTemplate(s.BodyTemplate, r.soap)
		if err != nil {
			f.add("request.body_template", "%v", err)
		}
		r.template = t
	}
	return r
}

// paramSources reads params_from: a name or a list of names.
func paramSources(v any, f *fieldErrors) paramSource {
	var names []any
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		names = []any{x}
	case []any:
		names = x
	default:
		f.add("request.params_from", "expected query, path or a list of them")
		return 0
	}
	var src paramSource
	for i, n := range names {
		path := "request.params_from"
		if _, list := v.([]any); list {
			path = fmt.Sprintf("%s[%d]", path, i)
		}
		switch n {
		case "query":
			src |= fromQuery
		case "path":
			src |= fromPath
		default:
			f.add(path, "%v is neither query nor path", n)
		}
	}
	return src
}

// compilePathPattern builds a one-route router for a pattern, which reads
// the path parameters exactly as routing reads a route's.
func compilePathPattern(pattern string) (*router.Router, error) {
	if !strings.HasPrefix(pattern, "/") && !strings.HasPrefix(pattern, "~") {
		return nil, fmt.Errorf("%q is not a path pattern: it starts with / (or ~ for a regex)", pattern)
	}
	rt, err := router.Compile([]router.Route{{Paths: []string{pattern}}})
	if err != nil {
		if ce := (*router.CompileError)(nil); errors.As(err, &ce) {
			return nil, ce.Err
		}
		return nil, err
	}
	m, ok := rt.Match(&router.Request{Path: samplePath(pattern)})
	if strings.HasPrefix(pattern, "/") && (!ok || m.NumParams() == 0) {
		return nil, fmt.Errorf("%q has no {name} segment to read", pattern)
	}
	return rt, nil
}

// samplePath fills a template pattern's parameters, to check it has some.
func samplePath(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "x"
		}
	}
	return strings.Join(segs, "/")
}

func compileResponse(s *ResponseSettings, from string, f *fieldErrors) *responseConv {
	r := &responseConv{stripNS: s.StripNamespaces == nil || *s.StripNamespaces}
	switch from {
	case kindXML, kindSOAP:
	case "":
		f.add("response.from", "required: xml or soap (it defaults to request.to)")
	default:
		f.add("response.from", "%q is neither xml nor soap", from)
	}
	r.soap = from == kindSOAP
	r.accept = "application/xml, text/xml"
	if r.soap {
		r.accept = "text/xml, application/soap+xml"
	}
	r.maxBody = limitSetting(f, "response.max_body_bytes", s.MaxBodyBytes, DefaultMaxBodyBytes, maxBodyBytesLimit)
	r.limits.depth = limitSetting(f, "response.max_depth", s.MaxDepth, DefaultMaxDepth, maxDepthLimit)
	r.limits.elements = limitSetting(f, "response.max_elements", s.MaxElements, DefaultMaxElements, maxElementsLimit)
	r.faultStatus = s.FaultStatus
	switch {
	case s.FaultStatus == 0:
		r.faultStatus = DefaultFaultStatus
	case s.FaultStatus < 400 || s.FaultStatus > 599:
		f.add("response.fault_status", "%d is not an error status (400 to 599)", s.FaultStatus)
	case !r.soap && from != "":
		f.add("response.fault_status", "only for from: soap (plain XML has no faults)")
	}

	r.rules = pathRules{byPath: map[string]pathRule{}, arrays: map[string][]string{}}
	for i, p := range s.Arrays {
		at := fmt.Sprintf("response.arrays[%d]", i)
		segs, err := splitElementPath(p, r.stripNS, false)
		if err != nil {
			f.add(at, "%v", err)
			continue
		}
		key := strings.Join(segs, "/")
		rule := r.rules.byPath[key]
		if rule.array {
			f.add(at, "%q is listed twice", p)
		}
		rule.array = true
		r.rules.byPath[key] = rule
		parent := strings.Join(segs[:len(segs)-1], "/")
		r.rules.arrays[parent] = append(r.rules.arrays[parent], segs[len(segs)-1])
	}
	for _, p := range slices.Sorted(maps.Keys(s.Types)) {
		at := "response.types." + p
		segs, err := splitElementPath(p, r.stripNS, true)
		if err != nil {
			f.add(at, "%v", err)
			continue
		}
		var t valueType
		switch s.Types[p] {
		case "string":
			t = typeString
		case "number":
			t = typeNumber
		case "boolean":
			t = typeBoolean
		default:
			f.add(at, "%q is not a type: number, boolean or string", s.Types[p])
			continue
		}
		key := strings.Join(segs, "/")
		rule := r.rules.byPath[key]
		rule.typ = t
		r.rules.byPath[key] = rule
	}
	if s.Select != "" {
		segs, err := splitElementPath(s.Select, r.stripNS, false)
		if err != nil {
			f.add("response.select", "%v", err)
		}
		r.selectPath = segs
	}
	return r
}

// splitElementPath splits "a/b/c" (a leading "/" allowed) into element
// names; attr allows a last "@name" (or "#text") segment.
func splitElementPath(p string, stripNS, attr bool) ([]string, error) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		last := i == len(segs)-1
		name := s
		if attr && last {
			if s == textKey {
				if i == 0 {
					return nil, fmt.Errorf("%q: #text belongs to an element: name it first", p)
				}
				continue
			}
			name = strings.TrimPrefix(s, "@")
		}
		ok := isNCName(name)
		if !stripNS && !ok {
			ok = isQName(name)
		}
		if !ok {
			what := "an element name"
			if attr && last {
				what = "an element name, @attribute or #text"
			}
			if strings.Contains(name, ":") && stripNS {
				return nil, fmt.Errorf("%q: segment %q has a prefix, which strip_namespaces: true removes", p, s)
			}
			return nil, fmt.Errorf("%q: segment %q is not %s (segments are separated by /)", p, s, what)
		}
	}
	return segs, nil
}

// limitSetting checks a positive bound, giving def when unset.
func limitSetting(f *fieldErrors, path string, v, def, limit int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		f.add(path, "must be positive")
	case v > limit:
		f.add(path, "%d is more than the most allowed, %d", v, limit)
	}
	return v
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
