package policy

// Edits of the answer beyond its headers, for Responders (transforms), and
// the one request edit a body transform needs besides ReadBody.
//
// Only answers already held in memory can have their body read or replaced:
// the gateway's own errors, mock answers, and upstream answers small enough
// to be read whole before they go out (a Content-Length of at most 16 KiB).
// Larger or chunked upstream answers, and every HTTP/2 upstream answer,
// stream to the client as they arrive and are never held back for an edit.

// SetResponseStatus replaces the status of the response about to go out (in
// Respond).
func (x *Exchange) SetResponseStatus(code int) { x.ctx.Response.SetStatusCode(code) }

// AddResponseHeader adds a line to a header of the response about to go out
// (in Respond), keeping those already there (an upstream's Link lines).
func (x *Exchange) AddResponseHeader(name, value string) { x.ctx.Response.Header.Add(name, value) }

// ResponseHeaderValues returns every value of a header of the response
// about to go out. The slices are valid until the next header call.
func (x *Exchange) ResponseHeaderValues(name string) [][]byte {
	return x.ctx.Response.Header.PeekAll(name)
}

// ResponseBody returns the body of the response about to go out (in
// Respond) when it is held in memory and at most max bytes long; ok is
// false for a streamed body, which is never read here, or a longer one.
// The bytes belong to the response: read them, never change or keep them.
func (x *Exchange) ResponseBody(max int) (body []byte, ok bool) {
	resp := &x.ctx.Response
	if resp.IsBodyStream() {
		return nil, false
	}
	body = resp.Body()
	if len(body) > max {
		return nil, false
	}
	return body, true
}

// SetResponseBody replaces the in-memory body of the response about to go
// out (in Respond) with a copy of b; the Content-Length sent follows its
// length. It does nothing to a streamed body and reports false.
func (x *Exchange) SetResponseBody(b []byte) bool {
	resp := &x.ctx.Response
	if resp.IsBodyStream() {
		return false
	}
	resp.SetBody(b)
	return true
}
