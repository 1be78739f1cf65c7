package policy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// defaultBodyReadTimeout is the longest wait for the next bytes of a body
// being read for inspection when the engine set none (SetBodyTimeout): a
// client may upload slowly, but must not stall.
const defaultBodyReadTimeout = 10 * time.Second

// SetBodyTimeout sets the longest wait for the next bytes of the body when
// a policy reads it, the same the proxy allows a body it streams.
func (x *Exchange) SetBodyTimeout(d time.Duration) { x.bodyTimeout = d }

// maxPooledBodySize is the largest body buffer kept for reuse; larger ones
// are rare enough to leave to the collector.
const maxPooledBodySize = 256 << 10

// Refusals of a body that could not be read whole. The rest of such a body
// is never read, so the connection cannot carry another request.
var (
	errBodyTooLarge  = &Reject{Status: 413, Code: "body_too_large", Message: "request body too large", Close: true}
	errBodyTimeout   = &Reject{Status: 408, Code: "request_timeout", Message: "request body not received in time", Close: true}
	errBodyMalformed = &Reject{Status: 400, Code: "bad_request", Message: "malformed request body", Close: true}
	errBodyReleased  = errors.New("request body read after the exchange ended")
	bodyBuffers      = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

// ReadBody reads the whole request body, at most limit bytes, for a policy
// that must look at it before the request goes on (JSON threat checks,
// validation). The body is then forwarded upstream from memory, byte for
// byte as the client sent it; a chunked body goes upstream with a
// Content-Length. A second call (another policy) returns the same bytes
// without reading again.
//
// A request without a body gets (nil, nil) and is left untouched, so it
// keeps the proxy's copy-free path. A body longer than limit gets 413, one
// whose client stalls 408, and a broken one (bad chunk framing, a cut
// upload) 400; each closes the connection.
//
// The bytes belong to the exchange: use them within the call, never keep
// them. A policy that reads the body calls ReleaseBody from its Finish.
func (x *Exchange) ReadBody(limit int) ([]byte, *Reject) {
	req := &x.ctx.Request
	cl := req.Header.ContentLength()
	if cl == 0 || cl == -2 { // -2: no framing headers, hence no body
		return nil, nil
	}
	if cl > limit {
		return nil, errBodyTooLarge
	}
	stream := x.ctx.RequestBodyStream()
	if held, ok := stream.(*heldBody); ok {
		if len(held.buf) > limit {
			return nil, errBodyTooLarge
		}
		return held.buf, nil
	}
	if stream == nil { // the server read the body itself
		body := req.Body()
		if len(body) > limit {
			return nil, errBodyTooLarge
		}
		return body, nil
	}

	bp := acquireBodyBuffer(cl, limit)
	idle := x.bodyTimeout
	if idle <= 0 {
		idle = defaultBodyReadTimeout
	}
	buf, err := readBody(stream, (*bp)[:0], limit, x.ctx.Conn(), idle)
	*bp = buf[:0]
	if err != nil {
		releaseBodyBuffer(bp)
		switch ne := net.Error(nil); {
		case errors.Is(err, errBodyTooLong), errors.Is(err, fasthttp.ErrBodyTooLarge):
			return nil, errBodyTooLarge
		case errors.As(err, &ne) && ne.Timeout():
			return nil, errBodyTimeout
		}
		return nil, errBodyMalformed
	}
	if len(buf) == 0 {
		// A chunked body with no data: forwarded as no body at all.
		releaseBodyBuffer(bp)
		req.ResetBody()
		req.Header.SetContentLength(0)
		return nil, nil
	}
	// SetBodyStream with a length also drops Transfer-Encoding. The server
	// still owns (drains and recycles) the stream read here.
	req.SetBodyStream(&heldBody{bp: bp, buf: buf}, len(buf))
	return buf, nil
}

var errBodyTooLong = errors.New("request body longer than the inspection limit")

// readBody reads r to its end into buf, at most limit bytes, waiting at
// most idle for each read.
func readBody(r io.Reader, buf []byte, limit int, conn net.Conn, idle time.Duration) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			// Room for one byte past the limit, to tell "exactly the limit"
			// from "more".
			grown := make([]byte, len(buf), min(max(2*cap(buf), 4096), limit+1))
			copy(grown, buf)
			buf = grown
		}
		if conn != nil {
			conn.SetReadDeadline(time.Now().Add(idle)) //nolint:errcheck // a failed deadline shows as a failed read
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, errBodyTooLong
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// acquireBodyBuffer returns a buffer for a body of cl bytes (-1: unknown).
func acquireBodyBuffer(cl, limit int) *[]byte {
	bp := bodyBuffers.Get().(*[]byte)
	if want := cl + 1; cl > 0 && cap(*bp) < want {
		// The announced length, and room for the read that sees the end.
		*bp = make([]byte, 0, min(want, limit+1))
	}
	return bp
}

func releaseBodyBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBodySize {
		*bp = (*bp)[:0]
		bodyBuffers.Put(bp)
	}
}

// heldBody is a body read for inspection, handed back to the request to be
// forwarded. Closing it (ReleaseBody, or the request's reset) gives its
// buffer back. The lock covers an upstream writer that still reads it
// concurrently (HTTP/2 upstreams send the body beside the answer): a read
// after the close fails rather than reading a buffer in use again.
type heldBody struct {
	mu  sync.Mutex
	bp  *[]byte // nil once closed
	buf []byte
	off int
}

func (h *heldBody) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bp == nil {
		return 0, errBodyReleased
	}
	if h.off >= len(h.buf) {
		return 0, io.EOF
	}
	n := copy(p, h.buf[h.off:])
	h.off += n
	return n, nil
}

// Close gives the buffer back; closing twice is harmless.
func (h *heldBody) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bp != nil {
		*h.bp = h.buf[:0]
		releaseBodyBuffer(h.bp)
		h.bp, h.buf = nil, nil
	}
	return nil
}

// ReleaseBody gives back the memory of a body read with ReadBody, once the
// exchange is over: call it from Finish. Calling it again, or without a
// body read, does nothing.
func (x *Exchange) ReleaseBody() {
	if held, ok := x.ctx.RequestBodyStream().(*heldBody); ok {
		held.Close() //nolint:errcheck // never fails
	}
}

// ReplaceBody replaces the request body read with ReadBody by a copy of b,
// sent upstream with its Content-Length. b must not share memory with the
// body ReadBody returned. Without a body read by ReadBody it does nothing
// and reports false. Later ReadBody calls return the new body.
func (x *Exchange) ReplaceBody(b []byte) bool {
	req := &x.ctx.Request
	switch stream := x.ctx.RequestBodyStream().(type) {
	case *heldBody:
		stream.mu.Lock()
		if stream.bp == nil { // released: the exchange is over
			stream.mu.Unlock()
			return false
		}
		stream.buf = append(stream.buf[:0], b...)
		stream.off = 0
		stream.mu.Unlock()
	case nil:
		// The server read the body itself (ReadBody returned req.Body()).
		if len(req.Body()) == 0 {
			return false
		}
		req.SetBody(b)
	default:
		return false // not read yet: nothing to replace
	}
	req.Header.SetContentLength(len(b))
	return true
}
