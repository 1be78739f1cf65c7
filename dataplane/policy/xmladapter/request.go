package xmladapter

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
	"github.com/tollgate/tollgate/dataplane/router"
)

type soapVersion uint8

const (
	soap11 soapVersion = iota
	soap12
)

// envelopePrefix is the prefix of the SOAP envelope the adapter writes.
const envelopePrefix = "soap"

// paramSource says where parameters are read: bits of fromQuery, fromPath.
type paramSource uint8

const (
	fromQuery paramSource = 1 << iota
	fromPath
)

// param is one request parameter, decoded; the strings are valid during
// the request only.
type param struct{ name, value string }

// requestConv is the request section compiled: every fixed piece of XML
// and header value is made at load.
type requestConv struct {
	soap    bool
	version soapVersion
	root    rootElement
	// contentType and soapAction are the header values sent upstream
	// (soapAction "" for none); envOpen and envClose surround the body.
	contentType, soapAction string
	envOpen, envClose       string

	maxBody, maxDepth int
	paramsFrom        paramSource
	params            []string
	pathRouter        *router.Router
	endpoint          string
	template          *bodyTemplate
}

// rootElement is the start tag (without its '>', for the attributes of a
// JSON body to follow) and end tag of the root.
type rootElement struct{ open, close string }

func compileRoot(name, namespace, prefix string) rootElement {
	qname := name
	if prefix != "" {
		qname = prefix + ":" + name
	}
	var open []byte
	open = append(append(open, '<'), qname...)
	if namespace != "" {
		open = append(open, " xmlns"...)
		if prefix != "" {
			open = append(append(open, ':'), prefix...)
		}
		open = append(appendEscaped(append(open, '=', '"'), namespace, true), '"')
	}
	return rootElement{open: string(open), close: "</" + qname + ">"}
}

const xmlDeclaration = `<?xml version="1.0" encoding="utf-8"?>`

// setHeaders makes the header values and envelope of the request's kind.
func (r *requestConv) setHeaders(action string) {
	r.envOpen = xmlDeclaration
	r.contentType = "application/xml; charset=utf-8"
	if !r.soap {
		return
	}
	ns := soap11NS
	if r.version == soap12 {
		ns = soap12NS
	}
	r.envOpen += `<` + envelopePrefix + `:Envelope xmlns:` + envelopePrefix + `="` + ns + `"><` + envelopePrefix + `:Body>`
	r.envClose = `</` + envelopePrefix + `:Body></` + envelopePrefix + `:Envelope>`
	switch r.version {
	case soap11:
		// SOAP 1.1 section 6.1.1: the header is a quoted URI, "" for none.
		r.contentType = "text/xml; charset=utf-8"
		r.soapAction = `"` + action + `"`
	case soap12:
		// SOAP 1.2 (RFC 3902): the action is a parameter of the media type.
		r.contentType = "application/soap+xml; charset=utf-8"
		if action != "" {
			r.contentType += `; action="` + action + `"`
		}
	}
}

// Refusals of a request that cannot be converted.
var (
	errInvalidJSON = &policy.Reject{Status: 400, Code: "invalid_json", Message: "request body is not valid JSON"}
	errJSONTooDeep = &policy.Reject{Status: 400, Code: "invalid_json", Message: "request JSON nests too deeply"}
	errEncoded     = &policy.Reject{Status: 415, Code: "unsupported_encoding",
		Message: "a compressed JSON body cannot be converted to XML; send it uncompressed", Close: true}
)

// handle converts the request on its way upstream. A JSON body (or, with
// params_from, a request without a body) becomes XML; any other body goes
// on untouched.
func (r *requestConv) handle(x *policy.Exchange) *policy.Reject {
	cl := x.ContentLength()
	hasBody := cl > 0 || cl == -1
	if hasBody && !policy.IsJSON(x.Header("Content-Type")) || !hasBody && r.paramsFrom == 0 {
		r.route(x)
		return nil
	}
	var body []byte
	if hasBody {
		if !policy.IdentityEncoded(x.Header("Content-Encoding")) {
			return errEncoded
		}
		limit := r.maxBody
		if capped := x.BodyLimit(); capped > 0 && capped < int64(limit) {
			limit = int(capped) // request-size-limit's cap answers 413 now, not mid-stream
		}
		var rej *policy.Reject
		if body, rej = x.ReadBody(limit); rej != nil {
			return rej
		}
		if len(body) > 0 {
			switch p, _ := jsonscan.Scan(body, jsonscan.Limits{Depth: r.maxDepth}); p {
			case jsonscan.OK:
			case jsonscan.TooDeep:
				return errJSONTooDeep
			default:
				return errInvalidJSON
			}
			body = bytes.TrimSpace(body)
		}
	}
	if len(body) == 0 && (hasBody || r.paramsFrom == 0) {
		r.route(x) // an empty body: nothing to convert
		return nil
	}

	s := getScratch()
	defer putScratch(s)
	if rej := r.collectParams(x, s); rej != nil {
		return rej
	}
	if err := r.write(&s.w, body, s.params); err != nil {
		return &policy.Reject{Status: 400, Code: "unconvertible_json", Message: "the JSON body cannot be sent as XML: " + err.Error()}
	}
	if len(body) > 0 {
		x.ReplaceBody(s.w.out)
	} else {
		ed := editorOf(x)
		ed.SetMethod("POST")
		ed.SetRequestBody(s.w.out)
	}
	if r.paramsFrom&fromQuery != 0 {
		x.SetRawQuery(nil) // its parameters are in the body now
	}
	x.SetRequestHeader("Content-Type", r.contentType)
	if r.soapAction != "" {
		x.SetRequestHeader("SOAPAction", r.soapAction)
	} else {
		// A client's own SOAPAction could name another operation.
		x.DelRequestHeader("SOAPAction")
	}
	r.route(x)
	return nil
}

// route sends the request to the endpoint, when one is set.
func (r *requestConv) route(x *policy.Exchange) {
	if r.endpoint != "" {
		editorOf(x).SetUpstreamPath(r.endpoint)
	}
}

// write writes the upstream body: the envelope around the template, or
// around the root element holding the parameters and then the body.
func (r *requestConv) write(w *xmlWriter, body []byte, params []param) error {
	w.reset()
	if r.template == nil || !r.template.decl {
		w.out = append(w.out, r.envOpen...)
	}
	var err error
	if r.template != nil {
		err = r.template.render(w, body, params)
	} else {
		err = r.writeRoot(w, body, params)
	}
	w.out = append(w.out, r.envClose...)
	return err
}

func (r *requestConv) writeRoot(w *xmlWriter, body []byte, params []param) error {
	w.out = append(w.out, r.root.open...)
	if len(body) > 0 && body[0] == '{' {
		if err := w.attributes(body); err != nil {
			return err
		}
	}
	w.out = append(w.out, '>')
	for _, p := range params {
		w.out = append(append(append(w.out, '<'), p.name...), '>')
		w.out = appendEscaped(w.out, p.value, false)
		w.out = append(append(append(w.out, '<', '/'), p.name...), '>')
	}
	if len(body) > 0 {
		switch body[0] {
		case '{':
			if err := w.content(body, true); err != nil {
				return err
			}
		case '[':
			return conversionError("a JSON array has no element name: send an object")
		case 'n':
		default:
			w.scalar(body, false)
		}
	}
	w.out = append(w.out, r.root.close...)
	return nil
}

// collectParams reads the parameters params_from names into s.params:
// path parameters in pattern order, then query parameters in the order
// sent, or the ones params lists, in its order.
func (r *requestConv) collectParams(x *policy.Exchange, s *scratch) *policy.Reject {
	all := s.all[:0]
	if r.paramsFrom&fromPath != 0 {
		if m, ok := r.pathRouter.Match(&router.Request{Path: b2s(x.Path())}); ok {
			for i := range m.NumParams() {
				name, value := m.ParamAt(i)
				if v, err := url.PathUnescape(value); err == nil {
					value = v
				}
				all = append(all, param{name, value})
			}
		}
	}
	if r.paramsFrom&fromQuery != 0 {
		for q := b2s(x.RawQuery()); q != ""; {
			var kv string
			kv, q, _ = strings.Cut(q, "&")
			if kv == "" {
				continue
			}
			name, value, _ := strings.Cut(kv, "=")
			all = append(all, param{unescapeQuery(name), unescapeQuery(value)})
		}
	}
	s.all = all
	if len(r.params) == 0 {
		for _, p := range all {
			if !isNCName(p.name) {
				return &policy.Reject{Status: 400, Code: "invalid_parameter",
					Message: "parameter " + strconv.Quote(p.name) + " is not an XML element name"}
			}
		}
		s.params = all
		return nil
	}
	s.params = s.params[:0]
	for _, name := range r.params {
		for _, p := range all {
			if p.name == name {
				s.params = append(s.params, p)
			}
		}
	}
	return nil
}

// unescapeQuery decodes a query component as forms encode it; a malformed
// escape is kept as written.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}
