package xmladapter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "xml-adapter"

func init() {
	policy.Register(Name, policy.Transform, build)
}

// adapter is the policy for one route.
type adapter struct {
	req  *requestConv  // nil: requests go on untouched
	resp *responseConv // nil: answers go out untouched
	log  *slog.Logger
}

func build(s *Settings, b *policy.Build) (any, error) {
	a, errs := compile(s)
	if len(errs) > 0 { // Validate has refused them already
		return nil, fmt.Errorf("%v", errs[0])
	}
	log := b.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a.log = log.With("policy", Name, "route", b.Route)
	return a, nil
}

// Handle converts the request, and asks for the answer to be held in
// memory so that Respond can convert it.
func (a *adapter) Handle(x *policy.Exchange) *policy.Reject {
	if a.resp != nil {
		x.BufferResponse(a.resp.maxBody)
		// The client's Accept is about the JSON the gateway answers.
		x.SetRequestHeader("Accept", a.resp.accept)
	}
	if a.req != nil {
		return a.req.handle(x)
	}
	return nil
}

// Finish gives back the memory of a body read to be converted.
func (a *adapter) Finish(x *policy.Exchange) {
	if a.req != nil {
		x.ReleaseBody()
	}
}

// Respond converts an XML answer held in memory to JSON, or a SOAP Fault
// to the gateway's JSON error. Anything else goes out untouched: answers
// that are not XML (the gateway's own errors among them), have no body,
// are compressed, or were streamed because they are larger than
// max_body_bytes or have no length.
func (a *adapter) Respond(x *policy.Exchange) {
	c := a.resp
	if c == nil {
		return
	}
	switch status := x.ResponseStatus(); {
	case status < 200, status == 204, status == 206, status == 304:
		return // no body, or a part of one
	}
	if !isXMLType(x.ResponseHeader("Content-Type")) {
		if a.log.Enabled(context.Background(), slog.LevelDebug) {
			a.log.Debug("answer passed through: not XML", "content_type", string(x.ResponseHeader("Content-Type")),
				"request_id", string(x.RequestID()))
		}
		return
	}
	if !policy.IdentityEncoded(x.ResponseHeader("Content-Encoding")) {
		a.log.Info("answer passed through: compressed", "content_encoding", string(x.ResponseHeader("Content-Encoding")),
			"request_id", string(x.RequestID()))
		return
	}
	body, ok := x.ResponseBody(c.maxBody)
	if !ok {
		a.log.Info("answer passed through: larger than max_body_bytes or without Content-Length",
			"max_body_bytes", c.maxBody, "content_length", string(x.ResponseHeader("Content-Length")),
			"request_id", string(x.RequestID()))
		return
	}
	if len(body) == 0 {
		return
	}

	t, s := getTree(), getScratch()
	defer putTree(t)
	defer putScratch(s)
	out, fault, err := c.convert(t, body, s.out[:0])
	switch {
	case err != nil:
		a.log.Warn("answer refused: the upstream's XML cannot be converted", "reason", err.Error(),
			"request_id", string(x.RequestID()))
		s.out = appendError(out[:0], 502, codeInvalidResponse, invalidResponseText, x.RequestID(), nil)
		answerError(x, 502, s.out)
	case fault != nil:
		s.out = appendError(out[:0], c.faultStatus, codeFault, faultMessage(fault.reason), x.RequestID(), fault.code)
		answerError(x, c.faultStatus, s.out)
	default:
		s.out = out
		x.SetResponseBody(out)
		x.SetResponseHeader("Content-Type", "application/json")
		x.DelResponseHeader("Accept-Ranges") // ranges of the XML, not of this
		weakenETag(x)
	}
}

// answerError replaces the answer with a gateway error.
func answerError(x *policy.Exchange, status int, body []byte) {
	x.SetResponseStatus(status)
	x.SetResponseBody(body)
	x.SetResponseHeader("Content-Type", "application/json")
	x.SetResponseHeader("Cache-Control", "no-store")
	for _, name := range etagNames {
		x.DelResponseHeader(name)
	}
	x.DelResponseHeader("Accept-Ranges")
}

// etagNames are the spellings of ETag in use: names of an upstream's
// answer may be matched as sent, and Go servers send "Etag".
var etagNames = [...]string{"ETag", "Etag"}

// weakenETag makes a strong entity tag weak: the JSON is a different
// representation, not the same bytes (RFC 9110 section 8.8.1).
func weakenETag(x *policy.Exchange) {
	etag := x.ResponseHeader(etagNames[0])
	if len(etag) == 0 {
		etag = x.ResponseHeader(etagNames[1])
	}
	if len(etag) == 0 || bytes.HasPrefix(etag, weakPrefix) {
		return
	}
	weak := append(append([]byte(nil), weakPrefix...), etag...) // a copy: the header goes
	for _, name := range etagNames {
		x.DelResponseHeader(name)
	}
	x.SetResponseHeader(etagNames[0], b2s(weak))
}

var weakPrefix = []byte("W/")

// scratch is per-request working memory, pooled.
type scratch struct {
	w      xmlWriter
	all    []param // every parameter read
	params []param // the ones sent
	out    []byte  // a converted answer
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledScratch keeps a rare huge body from pinning its memory.
const maxPooledScratch = 256 << 10

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.w.out) > maxPooledScratch || cap(s.out) > maxPooledScratch {
		return
	}
	s.w.reset()
	clear(s.all)
	clear(s.params)
	s.all, s.params, s.out = s.all[:0], s.params[:0], s.out[:0]
	scratchPool.Put(s)
}
