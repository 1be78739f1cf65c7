package transform

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
)

func buildResponse(s *ResponseSettings, _ *policy.Build) (any, error) {
	r, errs := compileResponse(s)
	if len(errs) > 0 { // Validate has refused them already
		return nil, fmt.Errorf("%v", errs[0])
	}
	return r, nil
}

// Handle has nothing to do on the way in: the policy edits the response.
func (r *response) Handle(*policy.Exchange) *policy.Reject { return nil }

// Respond edits the response about to go out, whoever made it (the
// upstream, a mock, or the gateway's own error): status, body, then
// headers.
func (r *response) Respond(x *policy.Exchange) {
	s := getScratch()
	defer putScratch(s)
	if r.status != nil {
		if to, ok := r.status[x.ResponseStatus()]; ok {
			mapStatus(x, to, s)
		}
	}
	if r.json != nil {
		r.editBody(x, s)
	}
	if !r.headers.empty() {
		r.headers.applyResponse(x, s)
	}
}

// errorPrefix starts the gateway's JSON error, whose status must follow the
// one the response is given.
var errorPrefix = []byte(`{"error":{"status":`)

// maxErrorBody is more than any gateway error body.
const maxErrorBody = 4 << 10

// mapStatus gives the response the status to, and, when the body is the
// gateway's JSON error, the same status in it.
func mapStatus(x *policy.Exchange, to int, s *scratch) {
	from := x.ResponseStatus()
	x.SetResponseStatus(to)
	body, ok := x.ResponseBody(maxErrorBody)
	if !ok || !bytes.HasPrefix(body, errorPrefix) {
		return
	}
	var digits [3]byte
	old := strconv.AppendInt(digits[:0], int64(from), 10)
	rest := body[len(errorPrefix):]
	if !bytes.HasPrefix(rest, old) || len(rest) == len(old) || rest[len(old)] != ',' {
		return
	}
	s.out = append(s.out[:0], errorPrefix...)
	s.out = strconv.AppendInt(s.out, int64(to), 10)
	s.out = append(s.out, rest[len(old):]...)
	x.SetResponseBody(s.out)
}

// editBody edits a JSON body held in memory. A streamed body (an upstream
// answer over 16 KiB or without a length), a compressed one, one over
// max_body_bytes or one that is not JSON goes out untouched.
func (r *response) editBody(x *policy.Exchange, s *scratch) {
	if !policy.IsJSON(x.ResponseHeader("Content-Type")) || !policy.IdentityEncoded(x.ResponseHeader("Content-Encoding")) {
		return
	}
	body, ok := x.ResponseBody(r.json.maxBody)
	if !ok || len(body) == 0 {
		return
	}
	if p, _ := jsonscan.Scan(body, jsonscan.Limits{Depth: maxJSONDepth}); p != jsonscan.OK {
		return
	}
	d := getDocument(body)
	r.json.edit(d, x, s)
	s.out = d.write(s.out[:0], d.root)
	putDocument(d)
	x.SetResponseBody(s.out)
}
