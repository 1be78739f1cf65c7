package policy

// Edits of the upstream request beyond headers and query: for adapters
// that turn a request into another kind of call (a GET into a SOAP POST).

// SetMethod replaces the method sent upstream. Metrics and the access log
// then record the method sent.
func (x *Exchange) SetMethod(method string) { x.ctx.Request.Header.SetMethod(method) }

// SetRequestBody sends a copy of b upstream as the request body, with its
// Content-Length, in place of whatever the client sent (usually nothing).
func (x *Exchange) SetRequestBody(b []byte) {
	bp := acquireBodyBuffer(len(b), len(b))
	buf := append((*bp)[:0], b...)
	*bp = buf[:0]
	// SetBodyStream with a length sets Content-Length and drops
	// Transfer-Encoding; the server closes the stream when the exchange
	// ends, which gives the buffer back.
	x.ctx.Request.SetBodyStream(&heldBody{bp: bp, buf: buf}, len(buf))
}

// SetUpstreamPath replaces the path sent upstream (what the route's path
// would be after strip_path). The query is kept.
func (x *Exchange) SetUpstreamPath(path string) {
	x.upPath = append(x.upPath[:0], path...)
	x.upPathSet = true
}

// UpstreamPath is the path set with SetUpstreamPath, if one was.
func (x *Exchange) UpstreamPath() ([]byte, bool) { return x.upPath, x.upPathSet }
