// Package requestvalidation is the request-validation policy: requests are
// checked against the operation an OpenAPI 3 document describes before the
// backend sees them. A request the document does not allow gets 400
// invalid_request with a message naming the field at fault
// (`query parameter "limit": must be at most 100`); the backend is never
// called. A valid request goes on byte for byte as the client sent it:
// nothing is rewritten (defaults the document declares are not filled in).
//
// The document is loaded and compiled when a configuration is applied,
// once for all the routes naming it (the openapi package keeps a file's
// parsed document across reloads while the file is unchanged). Per request
// the policy builds the input kin-openapi's openapi3filter validates from
// the exchange without copying what it does not check: only the headers
// the operation declares, the query only when it declares query
// parameters, the body only when it declares one, read once with
// Exchange.ReadBody and forwarded from that same memory. The scratch
// structures are pooled; strings point into the request's own buffers for
// the duration of the check.
//
// Path parameters, query, header and cookie parameters and request bodies
// of every media type openapi3filter decodes (JSON first of all) are
// checked. Security requirements of the document are not: authentication
// is the gateway's authentication policies' job, and they run before this
// one (phase protect).
package requestvalidation

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/openapi"
)

// Name is the policy's name in configurations.
const Name = "request-validation"

// Code is the error code of a refused request.
const Code = "invalid_request"

func init() {
	policy.Register(Name, policy.Protect, build)
}

func build(s *Settings, b *policy.Build) (any, error) {
	load := func() (any, error) {
		spec, err := openapi.Load(s.Spec)
		if err != nil {
			return nil, err
		}
		return newValidator(spec), nil
	}
	var v any
	var err error
	if b.Shared != nil {
		v, err = b.Shared.Get(Name+" spec="+s.Spec, load)
	} else {
		v, err = load()
	}
	if err != nil {
		return nil, err
	}
	h := &handler{
		v:        v.(*validator),
		body:     s.body(),
		maxBody:  s.maxBodyBytes(),
		basePath: s.BasePath,
	}
	if s.Operation != "" {
		op, err := h.v.spec.Operation(s.Operation)
		if err != nil {
			return nil, err
		}
		h.op = h.v.ops[op.Operation]
	}
	return h, nil
}

type handler struct {
	v *validator
	// op is the route's operation; nil: found per request by method and
	// path.
	op       *operation
	body     bool
	maxBody  int
	basePath string
}

// checkContext is what kin-openapi's checks get: they use it for nothing
// but option lookups.
var checkContext = context.Background()

func (h *handler) Handle(x *policy.Exchange) *policy.Reject {
	path := b2s(x.Path())
	if h.basePath != "" {
		rest, ok := strings.CutPrefix(path, h.basePath)
		if !ok || rest != "" && rest[0] != '/' {
			return refuse("path %s is outside the API's base path %s", path, h.basePath)
		}
		if rest == "" {
			rest = "/"
		}
		path = rest
	}
	method := b2s(x.Method())
	sc := h.v.acquire()
	defer h.v.release(sc)

	op := h.op
	if op == nil {
		var rej *policy.Reject
		if op, rej = h.v.route(sc, method, path); rej != nil {
			return rej
		}
	} else {
		if method != op.method && !(method == "HEAD" && op.method == "GET") {
			return refuse("method %s is not the method of operation %s (%s)", method, op.ref, op.method)
		}
		if !op.path.match(path, sc) {
			return refuse("path %s does not match %s of operation %s", path, op.template, op.ref)
		}
	}
	sc.input.Route = &op.route
	sc.fillParameters(x, op)
	for _, p := range op.params {
		if err := openapi3filter.ValidateParameter(checkContext, &sc.input, p); err != nil {
			return refuse("%s", describe(err, op))
		}
	}
	if !h.body || op.body == nil {
		return nil
	}
	return h.checkBody(x, sc, op)
}

// checkBody validates the body against the operation's requestBody. The
// media type is checked before the body is read; a body of a media type
// kin-openapi cannot decode (XML, images) is accepted as it is.
func (h *handler) checkBody(x *policy.Exchange, sc *scratch, op *operation) *policy.Reject {
	if cl := x.ContentLength(); cl != 0 && cl != -2 {
		ct := b2s(x.Header("Content-Type"))
		switch {
		case op.body.Content.Get(ct) == nil:
			if ct == "" {
				return refuse("body: Content-Type is missing (expected %s)", op.accepts)
			}
			return refuse("body: content type %q is not accepted (expected %s)", ct, op.accepts)
		case !decodable(ct):
			return nil
		case encoded(x.Header("Content-Encoding")):
			return errEncodedBody
		}
	}
	data, rej := x.ReadBody(h.maxBody)
	if rej != nil {
		return rej
	}
	sc.setBody(x, data)
	if err := openapi3filter.ValidateRequestBody(checkContext, &sc.input, op.body); err != nil {
		return refuse("%s", describe(err, op))
	}
	return nil
}

// decodable reports whether openapi3filter can decode bodies of a content
// type (JSON and its +json kin, forms, multipart, text, YAML, CSV).
func decodable(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	return openapi3filter.RegisteredBodyDecoder(mediaType) != nil || strings.HasSuffix(mediaType, "+json")
}

// Finish gives back the memory of a body read for validation.
func (h *handler) Finish(x *policy.Exchange) { x.ReleaseBody() }

// route finds the operation of a request by method and path, and its
// path parameters. A HEAD request is checked as the GET of its path when
// the document has no HEAD operation there.
func (v *validator) route(sc *scratch, method, path string) (*operation, *policy.Reject) {
	if op := v.find(sc, method, path); op != nil {
		return op, nil
	}
	if method == "HEAD" {
		if op := v.find(sc, "GET", path); op != nil {
			return op, nil
		}
	}
	var allowed []string
	for _, op := range v.all {
		if op.path.match(path, sc) && !slices.Contains(allowed, op.method) {
			allowed = append(allowed, op.method)
		}
		clear(sc.pathParams)
	}
	if len(allowed) > 0 {
		return nil, refuse("method %s is not allowed on %s (allowed: %s)", method, path, strings.Join(allowed, ", "))
	}
	return nil, refuse("no operation of the API matches %s %s", method, path)
}

// find asks kin-openapi's router, then tries the operations it cannot
// route (parameters within a segment, "/files/{name}.json").
func (v *validator) find(sc *scratch, method, path string) *operation {
	if v.router != nil {
		sc.url.Path = unescapePath(path)
		sc.req.Method = method
		if route, params, err := v.router.FindRoute(&sc.req); err == nil {
			if op := v.ops[route.Operation]; op != nil {
				sc.routeParams = params
				return op
			}
		}
	}
	for _, op := range v.unrouted {
		if op.method == method && op.path.match(path, sc) {
			return op
		}
		clear(sc.pathParams)
	}
	return nil
}

// errEncodedBody refuses a compressed body: it cannot be validated
// without inflating it, and letting it through would let any client skip
// the checks. The rest of the body is never read.
var errEncodedBody = &policy.Reject{Status: 415, Code: "unsupported_encoding",
	Message: "a body with a Content-Encoding cannot be validated; send it uncompressed", Close: true}

func encoded(ce []byte) bool {
	return len(ce) > 0 && !bytes.EqualFold(bytes.TrimSpace(ce), []byte("identity"))
}

func refuse(format string, args ...any) *policy.Reject {
	return &policy.Reject{Status: 400, Code: Code, Message: fmt.Sprintf(format, args...)}
}
