package transform

import (
	"fmt"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
)

// Names of the policies in configurations.
const (
	RequestName  = "request-transform"
	ResponseName = "response-transform"
)

func init() {
	policy.Register(RequestName, policy.Transform, buildRequest)
	policy.Register(ResponseName, policy.Transform, buildResponse)
}

func buildRequest(s *RequestSettings, _ *policy.Build) (any, error) {
	r, errs := compileRequest(s)
	if len(errs) > 0 { // Validate has refused them already
		return nil, fmt.Errorf("%v", errs[0])
	}
	return r, nil
}

// maxJSONDepth bounds the nesting of an edited body, as encoding/json
// does: the tree is built and written recursively.
const maxJSONDepth = 10000

var (
	errInvalidJSON = &policy.Reject{Status: 400, Code: "invalid_json", Message: "request body is not valid JSON"}
	errTooDeep     = &policy.Reject{Status: 400, Code: "invalid_json", Message: "request JSON nests too deeply"}
	errEncoded     = &policy.Reject{Status: 415, Code: "unsupported_encoding",
		Message: "a compressed JSON body cannot be transformed; send it uncompressed", Close: true}
)

// Handle edits the request on its way upstream: body, headers, then
// query. Every template reads the request as it reached the policy: the
// body's before any header is edited, the headers' before the first one
// changes, and query values always from the client's query.
func (r *request) Handle(x *policy.Exchange) *policy.Reject {
	s := getScratch()
	defer putScratch(s)
	if r.json != nil {
		if rej := r.editBody(x, s); rej != nil {
			return rej
		}
	}
	if !r.headers.empty() {
		r.headers.applyRequest(x, s)
	}
	if !r.query.empty() {
		r.query.apply(x, s)
	}
	return nil
}

// editBody edits a JSON body; any other body goes on untouched.
func (r *request) editBody(x *policy.Exchange, s *scratch) *policy.Reject {
	if cl := x.ContentLength(); cl == 0 || cl == -2 || !policy.IsJSON(x.Header("Content-Type")) {
		return nil
	}
	if !policy.IdentityEncoded(x.Header("Content-Encoding")) {
		return errEncoded
	}
	limit := r.json.maxBody
	if capped := x.BodyLimit(); capped > 0 && capped < int64(limit) {
		limit = int(capped) // request-size-limit's cap answers 413 now, not mid-stream
	}
	body, rej := x.ReadBody(limit)
	if rej != nil {
		return rej
	}
	if len(body) == 0 {
		return nil
	}
	switch p, _ := jsonscan.Scan(body, jsonscan.Limits{Depth: maxJSONDepth}); p {
	case jsonscan.OK:
	case jsonscan.TooDeep:
		return errTooDeep
	default:
		return errInvalidJSON
	}
	d := getDocument(body)
	r.json.edit(d, x, s)
	s.out = d.write(s.out[:0], d.root)
	putDocument(d)
	x.ReplaceBody(s.out)
	return nil
}

// Finish gives back the memory of a body read to be edited.
func (r *request) Finish(x *policy.Exchange) {
	if r.json != nil {
		x.ReleaseBody()
	}
}
