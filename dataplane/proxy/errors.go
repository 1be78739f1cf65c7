package proxy

import (
	"strconv"
	"sync"

	"github.com/tollgate/tollgate/internal/jsonx"
	"github.com/valyala/fasthttp"
)

// Error codes of the gateway's own JSON error answers. They are part of the
// public contract: clients may switch on them.
const (
	CodeNoRoute             = "no_route"
	CodeBadRequest          = "bad_request"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUpstreamTimeout     = "upstream_timeout"
	CodeNoHealthyUpstream   = "no_healthy_upstream"
	CodeCircuitOpen         = "circuit_open"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeUpgradeRefused      = "upgrade_refused"
	CodeOverloaded          = "overloaded"
	CodeBodyTooLarge        = "body_too_large"
	CodeInternal            = "internal_error"
)

// WriteError answers with the gateway's JSON error shape:
//
//	{"error": {"status": 404, "code": "no_route", "message": "...", "request_id": "..."}}
//
// The body is built by appending into the response buffer, so an error costs
// no allocation on the hot path.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message, requestID string) {
	resp := &ctx.Response
	resp.ResetBody()
	resp.SetStatusCode(status)
	resp.Header.SetContentTypeBytes(contentTypeJSON)
	resp.Header.Set("Cache-Control", "no-store")
	if requestID != "" {
		resp.Header.Set("X-Request-ID", requestID)
	}
	bp := errorBufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = jsonx.AppendString(b, code)
	b = append(b, `,"message":`...)
	b = jsonx.AppendString(b, message)
	b = append(b, `,"request_id":`...)
	b = jsonx.AppendString(b, requestID)
	b = append(b, "}}\n"...)
	resp.SetBody(b) // copied into the response's own pooled buffer
	*bp = b
	errorBufPool.Put(bp)
}

var errorBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

var contentTypeJSON = []byte("application/json")

// answerError finishes a forwarded request with the gateway's error for
// res.Status and res.Code.
func answerError(ctx *fasthttp.RequestCtx, r *Request, res *Result, fin Finisher, msg string) {
	WriteError(ctx, res.Status, res.Code, msg, string(r.RequestID))
	fin.Finish(int64(len(ctx.Response.Body())), nil)
}
