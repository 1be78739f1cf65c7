package cache

import (
	"bytes"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/cache/httpcache"
	"github.com/tollgate/tollgate/dataplane/policy/cache/store"
)

// handler is the policy on one route, for one configuration snapshot; its
// routeCache may outlive it.
type handler struct {
	cache    *routeCache
	counters routeCounters

	get, head bool
	// keyNames are the request headers every key includes (vary and
	// key_headers); vary those announced in the response's Vary.
	keyNames, vary []string
	keyConsumer    bool
	private        bool
	ttl            time.Duration
	maxBody        int
	lockTimeout    time.Duration

	// pending holds what Respond needs of the requests sent upstream, by
	// exchange.
	pending sync.Map // *policy.Exchange -> *pending
}

// pending is a request the cache sent upstream.
type pending struct {
	resource   string
	store      bool // its answer may be stored
	authorized bool
	// flight is the fetch the request leads, under flightKey; nil when it
	// leads none.
	flight    *flight
	flightKey string
}

// notCached answers a miss that asked for only-if-cached (RFC 9111 section
// 5.2.1.7).
var notCached = &policy.Reject{Status: 504, Code: "not_cached",
	Message: "the response is not in the cache and the request asked for only-if-cached"}

// keyBuffers hold the keys being built: resource key, then variant.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Handle answers from the cache when it can, and otherwise prepares the
// answer on its way back to be stored.
func (h *handler) Handle(x *policy.Exchange) *policy.Reject {
	head := false
	switch string(x.Method()) {
	case "GET":
		if !h.get {
			return nil
		}
	case "HEAD":
		if !h.head {
			return nil
		}
		head = true
	default:
		return nil
	}
	if len(x.Header("Upgrade")) > 0 {
		return nil
	}
	bp := keyBuffers.Get().(*[]byte)
	key, rej := h.handle(x, (*bp)[:0], head)
	*bp = key[:0]
	keyBuffers.Put(bp)
	return rej
}

// handle is Handle with a buffer for the key, which it returns grown.
func (h *handler) handle(x *policy.Exchange, key []byte, head bool) ([]byte, *policy.Reject) {
	c := h.cache
	req := httpcache.ParseRequest(x.HeaderValues("Cache-Control"), x.Header("Pragma"))
	authorized := len(x.Header("Authorization")) > 0
	key = h.resourceKey(key, x)
	n := len(key)
	now := c.now()

	// A request that accepts a stored answer looks one up; no-store,
	// no-cache and max-age=0 go upstream (the last two store the answer).
	lookup := !req.NoStore && !req.NoCache && req.MaxAge != 0
	if lookup {
		var e *store.Entry
		e, key = h.lookup(x, key, n, now)
		if rej := h.answer(x, e, req, authorized, now); rej != nil {
			return key, rej
		}
	}
	storable := !req.NoStore && !head
	var lead *flight
	if lookup && h.lockTimeout > 0 {
		// Only a plain GET leads a fetch: its answer is the full response
		// that can be stored. Other requests may wait for one.
		canLead := storable && !req.OnlyIfCached && len(x.Header("Range")) == 0 &&
			len(x.Header("If-None-Match")) == 0 && len(x.Header("If-Modified-Since")) == 0
		f, leader := c.flights.join(key, canLead)
		switch {
		case leader:
			lead = f
		case f != nil && c.flights.wait(f, h.lockTimeout):
			now = c.now()
			var e *store.Entry
			e, key = h.lookup(x, key, n, now)
			if rej := h.answer(x, e, req, authorized, now); rej != nil {
				return key, rej
			}
		}
	}
	x.SetAnswerHeader("X-Cache", "MISS")
	switch {
	case req.OnlyIfCached:
		h.counters.miss.Inc()
		return key, notCached
	case lookup:
		h.counters.miss.Inc()
	default:
		h.counters.bypass.Inc()
	}
	if !storable && len(h.vary) == 0 {
		return key, nil
	}
	p := &pending{store: storable, authorized: authorized}
	if lead != nil {
		p.flight, p.flightKey = lead, string(key)
	}
	if storable {
		p.resource = string(key[:n])
		x.BufferResponse(h.maxBody)
	}
	h.pending.Store(x, p)
	return key, nil
}

// resourceKey appends the request's resource key: route, host, path and
// query (as the client sent it, or as an earlier policy rewrote it for the
// upstream). The method is not part of it: only GET responses are stored,
// and HEAD is answered from them.
func (h *handler) resourceKey(dst []byte, x *policy.Exchange) []byte {
	dst = store.ResourceKey(dst, h.cache.route, x.Host(), x.Path())
	if q := x.RawQuery(); len(q) > 0 {
		dst = append(append(dst, '?'), q...)
	}
	return dst
}

// appendVariant appends the request's variant under names: the consumer
// when the key includes it, then the values of each named header.
func (h *handler) appendVariant(dst []byte, x *policy.Exchange, names []string) []byte {
	if h.keyConsumer {
		if c := x.Consumer; c != nil {
			dst = append(dst, c.Name...)
		}
		dst = append(dst, 1)
	}
	for _, name := range names {
		for i, v := range x.HeaderValues(name) {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(dst, v...)
		}
		dst = append(dst, 0)
	}
	return dst
}

// lookup finds the request's entry, fresh at now. key holds the resource
// key in its first n bytes; the variant is appended after them (under the
// header names the resource is known to vary on), and key is returned.
func (h *handler) lookup(x *policy.Exchange, key []byte, n int, now time.Time) (*store.Entry, []byte) {
	c := h.cache
	names, known := c.mem.Names(key[:n])
	if !known {
		names = h.keyNames
	}
	key = h.appendVariant(key[:n], x, names)
	ns := now.UnixNano()
	e := c.mem.Get(key[:n], key[n:], ns)
	if e != nil || c.redis == nil {
		return e, key
	}
	e, stored, _ := c.redis.Get(c.keys(key[:n]), names, key[n:], func(other []string) []byte {
		return h.appendVariant(nil, x, other)
	}, ns)
	if e != nil {
		c.mem.Put(e, stored)
	}
	return e, key
}

// answer returns the stored answer to the request, with its headers set,
// or nil when e (nil for none) cannot answer it.
func (h *handler) answer(x *policy.Exchange, e *store.Entry, req httpcache.RequestDirectives, authorized bool, now time.Time) *policy.Reject {
	if e == nil || (authorized && !e.Shared) {
		return nil
	}
	age := e.Age(now.UnixNano())
	if req.MaxAge > 0 && age > req.MaxAge {
		return nil
	}
	for _, f := range e.Header {
		x.SetAnswerHeader(f.Name, f.Value)
	}
	var num [20]byte
	x.SetAnswerHeaderBytes("Age", strconv.AppendInt(num[:0], age, 10))
	x.SetAnswerHeader("X-Cache", "HIT")
	h.counters.hit.Inc()
	if e.Status == 200 && notModified(x, e) {
		return e.NotModified
	}
	return e.Answer
}

// notModified reports whether a conditional request's validators match
// the entry (If-None-Match first; If-Modified-Since only without it).
func notModified(x *policy.Exchange, e *store.Entry) bool {
	if inm := x.Header("If-None-Match"); len(inm) > 0 {
		return httpcache.NoneMatch(inm, e.ETag)
	}
	if ims := x.Header("If-Modified-Since"); len(ims) > 0 {
		return httpcache.NotModifiedSince(ims, e.LastModified)
	}
	return false
}

// Respond stores the upstream's answer to a request sent upstream, when it
// may be stored, and wakes the requests waiting for it.
func (h *handler) Respond(x *policy.Exchange) {
	v, ok := h.pending.LoadAndDelete(x)
	if !ok {
		return
	}
	p := v.(*pending)
	if len(h.vary) > 0 {
		h.announceVary(x)
	}
	if p.store {
		c := h.cache
		now := c.now()
		if e, names := h.entryOf(x, p, now); e != nil {
			c.mem.Put(e, names)
			if c.redis != nil {
				c.redis.Put(c.keys([]byte(e.Resource)), e, names, now.UnixNano())
			}
		}
	}
	if p.flight != nil {
		h.cache.flights.land(p.flightKey, p.flight)
	}
}

// Finish wakes the requests waiting for a fetch whose answer never reached
// Respond.
func (h *handler) Finish(x *policy.Exchange) {
	if v, ok := h.pending.LoadAndDelete(x); ok {
		if p := v.(*pending); p.flight != nil {
			h.cache.flights.land(p.flightKey, p.flight)
		}
	}
}

// announceVary adds the policy's vary headers to the response's Vary.
func (h *handler) announceVary(x *policy.Exchange) {
	lines := hVary.values(x)
	have, star := httpcache.VaryNames(lines)
	if star {
		return
	}
	var missing []string
	for _, name := range h.vary {
		if !slices.Contains(have, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return
	}
	value := strings.Join(missing, ", ")
	if len(lines) > 0 {
		value = joinLines(lines) + ", " + value
	}
	hVary.set(x, value)
}

// entryOf returns the entry to store of the response about to go out, and
// the request header names it varies on; nil when the response may not be
// stored (RFC 9111 section 3, for a shared cache).
func (h *handler) entryOf(x *policy.Exchange, p *pending, now time.Time) (*store.Entry, []string) {
	status := x.ResponseStatus()
	if !httpcache.StorableStatus(status) || len(hSetCookie.value(x)) > 0 {
		return nil, nil
	}
	cc := httpcache.ParseResponse(hCacheControl.values(x))
	switch {
	case cc.NoStore, cc.NoCache:
		return nil, nil
	case cc.Private && !h.private:
		return nil, nil
	case p.authorized && !cc.SharedWithAuthorization():
		return nil, nil
	}
	varyNames, star := httpcache.VaryNames(hVary.values(x))
	if star {
		return nil, nil
	}
	life, _ := httpcache.Lifetime(cc, hExpires.value(x), hDate.value(x), now, h.ttl)
	if life <= 0 {
		return nil, nil
	}
	body, ok := x.ResponseBody(h.maxBody)
	if !ok {
		return nil, nil // streamed, or larger than max_body_bytes
	}
	ns := now.UnixNano()
	ageBase := ns - httpcache.Age(hAge.value(x))*int64(time.Second)
	if ageBase+int64(life) <= ns {
		return nil, nil // it arrived stale
	}
	names := h.keyNames
	if len(varyNames) > 0 {
		names = canonicalNames(append(slices.Clone(h.keyNames), varyNames...))
	}
	e := &store.Entry{
		Resource: p.resource,
		Variant:  string(h.appendVariant(nil, x, names)),
		Status:   status,
		Body:     bytes.Clone(body),
		AgeBase:  ageBase,
		Expires:  ageBase + int64(life),
		Shared:   cc.SharedWithAuthorization(),
	}
	x.VisitResponseHeaders(func(name, value []byte) {
		if !storedHeader(name) || x.IsAnswerHeader(name) {
			return
		}
		n := textproto.CanonicalMIMEHeaderKey(string(name))
		for i := range e.Header {
			if e.Header[i].Name == n { // a repeated line: one field, as a list
				e.Header[i].Value += ", " + string(value)
				return
			}
		}
		e.Header = append(e.Header, store.Field{Name: n, Value: string(value)})
	})
	return e.Seal(), names
}
