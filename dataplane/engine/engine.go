// Package engine holds the data plane's compiled configuration and serves
// requests with it.
//
// A configuration is compiled off the hot path into an immutable snapshot
// (router, upstream pools, per-route settings) and published with one atomic
// pointer swap, so a reload never blocks or fails a request: requests that
// started on the old snapshot finish on it. The request path reads as one
// chain: snapshot load, path normalization, router match, then the route's
// action (mock answer, aggregation or proxy.Forward), then metrics and the
// access log when the last body byte has been handed to the client.
package engine

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/edge"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/router"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/observe/accesslog"
	"github.com/tollgate/tollgate/observe/metrics"
	"github.com/valyala/fasthttp"
)

// Options are the long-lived parts an engine works with; they outlive every
// snapshot.
type Options struct {
	Metrics   *metrics.Metrics
	AccessLog *accesslog.Logger // nil: no access log
	Logger    *slog.Logger
	Registry  *upstream.Registry
	Transport *proxy.Transport
	// State keeps policy state (rate limit counters, bans) across reloads.
	State *policy.State
}

// Engine serves requests with the current snapshot.
type Engine struct {
	opts     Options
	current  atomic.Pointer[snapshot]
	applyMu  sync.Mutex
	inflight atomic.Int64
	accessMu sync.RWMutex // guards opts.AccessLog replacement
}

// New returns an engine with no configuration: every request gets 404 until
// Apply succeeds.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Transport == nil {
		opts.Transport = proxy.NewTransport()
	}
	if opts.Registry == nil {
		opts.Registry = upstream.NewRegistry(upstream.RegistryOptions{Logger: opts.Logger, ClientTLS: opts.Transport.ClientTLS})
	}
	if opts.State == nil {
		opts.State = policy.NewState()
	}
	e := &Engine{opts: opts}
	opts.Metrics.TrackInflight(e.Inflight)
	empty, _ := e.compile(&config.Config{}, 0)
	e.current.Store(empty)
	return e
}

// Apply compiles cfg (already validated) and, when that succeeds, makes it
// the configuration of every new request. On error the running
// configuration stays.
func (e *Engine) Apply(cfg *config.Config, version int64) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	next, err := e.compile(cfg, version)
	if err != nil {
		return err
	}
	old := e.current.Swap(next)
	e.opts.Metrics.SetConfigVersion(version)
	h1 := make([][]*fasthttp.HostClient, 0, len(next.services))
	h2 := make([][]http.RoundTripper, 0)
	for _, sv := range next.services {
		h1 = append(h1, sv.clients)
		h2 = append(h2, sv.h2)
	}
	e.opts.Transport.Retain(h1, h2)
	if old != nil {
		old.release()
	}
	e.opts.State.Sweep()
	return nil
}

// Check compiles cfg as Apply would, without serving it: whether Apply
// would accept it.
func (e *Engine) Check(cfg *config.Config) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	s, err := e.compile(cfg, 0)
	if err != nil {
		return err
	}
	s.release()
	return nil
}

// Version returns the version of the configuration in use.
func (e *Engine) Version() int64 { return e.current.Load().version }

// Inflight returns the number of requests being served.
func (e *Engine) Inflight() int64 { return e.inflight.Load() }

// SetAccessLog replaces the access logger (on a reload that changes
// logging.access_log) and returns the previous one, for the caller to close.
func (e *Engine) SetAccessLog(l *accesslog.Logger) *accesslog.Logger {
	e.accessMu.Lock()
	defer e.accessMu.Unlock()
	old := e.opts.AccessLog
	e.opts.AccessLog = l
	return old
}

// Close releases the current snapshot and the policies' state.
func (e *Engine) Close() {
	if s := e.current.Swap(nil); s != nil {
		s.release()
	}
	e.opts.State.Close()
}

// ServeHTTP is the fasthttp request handler of the proxy listeners.
func (e *Engine) ServeHTTP(ctx *fasthttp.RequestCtx) {
	x := acquireExchange()
	x.engine = e
	x.start = ctx.Time()
	x.snap = e.current.Load()
	n := e.inflight.Add(1)
	x.serve(ctx, n)
}

// exchange is the per-request state: pooled, so the hot path allocates
// nothing of its own. It implements proxy.Finisher and is recycled in
// Finish, after the response body has been written.
type exchange struct {
	engine  *Engine
	snap    *snapshot
	route   *route
	ctx     *fasthttp.RequestCtx
	start   time.Time
	reqID   []byte
	pathBuf []byte
	pathOwn []byte // the path, out of the request's buffer that forwarding rewrites
	keyBuf  []byte
	uri     []byte
	path    []byte
	header  fastHeader
	status  int
	req     proxy.Request
	result  proxy.Result
	peer    netip.Addr
	client  netip.Addr
	trusted bool
	ipBuf   [64]byte
	// pol is the request as the route's policies see it.
	pol policy.Exchange
	// inHandler is set while the request handler runs: a Finish that comes
	// then (the whole answer is in memory) waits for the response phase.
	inHandler     bool
	statusFinal   bool // status is what the response phase left
	finishPending bool
	finishBytes   int64
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{reqID: make([]byte, 0, 64), uri: make([]byte, 0, 256)}
}}

func acquireExchange() *exchange { return exchangePool.Get().(*exchange) }

func (x *exchange) serve(ctx *fasthttp.RequestCtx, inflight int64) {
	x.ctx = ctx
	s := x.snap
	x.setRequestID(ctx)
	x.identifyClient(ctx)

	// What the HTTP engine parsed leniently is refused here, before anything
	// reads it, and the connection is closed: its framing cannot be trusted.
	if _, err := edge.CheckHeaders(ctx.Request.Header.RawHeaders()); err != nil {
		ctx.SetConnectionClose()
		x.fail(fasthttp.StatusBadRequest, proxy.CodeBadRequest, "malformed request: "+err.Error())
		return
	}
	if m := ctx.Method(); string(m) == "CONNECT" || string(m) == "TRACE" {
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		x.fail(fasthttp.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "method not allowed")
		return
	}

	if s.maxConcurrent > 0 && inflight > s.maxConcurrent {
		ctx.Response.Header.Set("Retry-After", "1")
		x.fail(fasthttp.StatusServiceUnavailable, proxy.CodeOverloaded, "the gateway is at its concurrency limit")
		return
	}
	if s.maxBody > 0 && ctx.Request.Header.ContentLength() > s.maxBody {
		// The rest of the body is never read, so the connection cannot be
		// used for another request.
		ctx.SetConnectionClose()
		x.fail(fasthttp.StatusRequestEntityTooLarge, proxy.CodeBodyTooLarge, "request body too large")
		return
	}
	uri := ctx.Request.Header.RequestURI()
	if s.maxURI > 0 && len(uri) > s.maxURI {
		x.fail(fasthttp.StatusRequestURITooLong, "uri_too_long", "request target too long")
		return
	}
	rawPath, query, ok := splitRequestURI(uri)
	if !ok {
		x.fail(fasthttp.StatusBadRequest, proxy.CodeBadRequest, "invalid request target")
		return
	}
	path, err := router.NormalizePath(rawPath)
	if err != nil {
		x.fail(fasthttp.StatusBadRequest, proxy.CodeBadRequest, "invalid request path")
		return
	}
	x.path = path
	x.header.h = &ctx.Request.Header
	m, ok := s.router.Match(&router.Request{
		Host:   b2s(ctx.Request.Header.Host()),
		Method: b2s(ctx.Method()),
		Path:   b2s(path),
		Header: &x.header,
	})
	if !ok {
		x.fail(fasthttp.StatusNotFound, proxy.CodeNoRoute, "no route matches this request")
		return
	}
	r := &s.routes[m.RouteID]
	x.route = r
	// Forwarding may rewrite the request-target in the client's request, the
	// buffer path points into; policies and the access log need it after.
	x.pathOwn = append(x.pathOwn[:0], path...)
	path = x.pathOwn
	x.path = path
	if r.chain != nil {
		x.pol.Reset(ctx, r.name, r.serviceName(), path, x.client, x.reqID)
		x.pol.SetClientQuery(query)
		x.pol.SetBodyTimeout(s.bodyTimeout)
		if rej := r.chain.Run(&x.pol); rej != nil {
			x.reject(rej)
			return
		}
	}
	if r.mock != nil {
		x.serveMock(ctx, r.mock)
		return
	}
	if r.aggregate != nil {
		x.serveAggregate(ctx, m, query)
		return
	}

	upPath := path
	if r.stripPath {
		upPath = path[m.PrefixLen:]
		if len(upPath) == 0 || upPath[0] != '/' {
			x.pathBuf = append(append(x.pathBuf[:0], '/'), upPath...)
			upPath = x.pathBuf
		}
	}
	if p, ok := x.pol.UpstreamPath(); ok {
		upPath = p
	}
	x.uri = append(x.uri[:0], upPath...)
	if x.pol.QueryEdited() {
		query = x.pol.RawQuery()
	}
	if len(query) > 0 {
		x.uri = append(append(x.uri, '?'), query...)
	}
	sv := r.service
	x.req = proxy.Request{
		Pool:            sv.pool,
		Clients:         sv.clients,
		H2:              sv.h2,
		Dial:            sv.dial,
		URI:             x.uri,
		HashKey:         x.hashKey(ctx, sv),
		ResponseTimeout: sv.responseTimeout,
		BodyTimeout:     s.bodyTimeout,
		PreserveHost:    r.preserveHost,
		RequestID:       x.reqID,
		ClientIP:        x.client,
		Peer:            x.peer,
		TrustedPeer:     x.trusted,
		Proto:           proto(ctx),
	}
	if c := x.pol.Consumer; c != nil {
		x.req.ConsumerName = c.HeaderName()
		if !x.pol.ConsumerGroupsHidden() {
			x.req.ConsumerGroups = c.HeaderGroups()
		}
	}
	// A body without a declared length is held to the global limit while
	// it streams, as a declared one is before it is read.
	x.req.BodyLimit = x.pol.BodyLimit()
	if limit := int64(s.maxBody); limit > 0 && (x.req.BodyLimit == 0 || limit < x.req.BodyLimit) {
		x.req.BodyLimit = limit
	}
	x.req.BufferResponse = x.pol.ResponseBufferLimit()
	upgrade := proxy.IsWebSocketUpgrade(&ctx.Request.Header)
	if upgrade && (!r.websocket || sv.h2 != nil) {
		x.fail(fasthttp.StatusForbidden, proxy.CodeUpgradeRefused, "WebSocket is not allowed on this route")
		return
	}
	x.inHandler = true
	if upgrade {
		proxy.ForwardUpgrade(ctx, &x.req, &x.result, x)
	} else {
		proxy.Forward(ctx, &x.req, &x.result, x)
	}
	x.respond()
	x.inHandler = false
	if x.finishPending {
		x.finish(x.finishBytes)
	}
}

// respond runs the route's response phase on the response about to go out.
// The status it leaves (a policy may map it) is the one recorded.
func (x *exchange) respond() {
	if x.route != nil && x.route.chain != nil {
		x.route.chain.Respond(&x.pol)
		x.status, x.statusFinal = x.ctx.Response.StatusCode(), true
	}
}

// reject answers with a policy's refusal.
func (x *exchange) reject(rej *policy.Reject) {
	if rej.Close {
		x.ctx.SetConnectionClose()
	}
	if rej.Code == "" {
		x.status = rej.Status
		x.ctx.Response.SetStatusCode(rej.Status)
		x.ctx.Response.Header.SetBytesV("X-Request-ID", x.reqID)
		if rej.Body != nil {
			x.ctx.Response.SetBodyRaw(rej.Body)
		}
		x.respond()
		x.finish(int64(len(rej.Body)))
		return
	}
	x.fail(rej.Status, rej.Code, rej.Message)
}

func proto(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() {
		return "https"
	}
	return "http"
}

func (x *exchange) hashKey(ctx *fasthttp.RequestCtx, sv *service) []byte {
	switch sv.hashOn {
	case hashIP:
		x.keyBuf = x.client.AppendTo(x.keyBuf[:0])
		return x.keyBuf
	case hashHeader:
		// A copy: forwarding may rewrite the headers the value lives in.
		x.keyBuf = append(x.keyBuf[:0], ctx.Request.Header.Peek(sv.hashHeader)...)
		return x.keyBuf
	case hashConsumer:
		// Without an authenticated consumer the pool spreads as it would
		// without a key.
		if c := x.pol.Consumer; c != nil {
			return c.HeaderName()
		}
	}
	return nil
}

// fail answers with a gateway error and finishes the exchange.
func (x *exchange) fail(status int, code, msg string) {
	x.status = status
	proxy.WriteError(x.ctx, status, code, msg, b2s(x.reqID))
	x.respond()
	x.finish(int64(len(x.ctx.Response.Body())))
}

func (x *exchange) serveMock(ctx *fasthttp.RequestCtx, m *mockResponse) {
	ctx.Response.SetStatusCode(m.status)
	for _, h := range m.headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
	ctx.Response.Header.SetBytesV("X-Request-ID", x.reqID)
	ctx.Response.SetBodyRaw(m.body)
	x.status = m.status
	x.respond()
	x.finish(int64(len(m.body)))
}

// Finish implements proxy.Finisher: it is called exactly once per forwarded
// request, when the response body has been handed to the client.
func (x *exchange) Finish(bytes int64, _ error) {
	if x.inHandler {
		x.finishPending, x.finishBytes = true, bytes
		return
	}
	x.finish(bytes)
}

// finish records the request in metrics and the access log and recycles the
// exchange.
func (x *exchange) finish(bytes int64) {
	e := x.engine
	total := time.Since(x.start)
	status := x.status
	if x.result.Status != 0 && !x.statusFinal {
		status = x.result.Status
	}
	rm := x.snap.noRoute
	routeName, serviceName, consumer := "", "", ""
	if r := x.route; r != nil {
		rm = r.metrics
		routeName, serviceName = r.name, r.serviceName()
		if r.chain != nil {
			r.chain.Finish(&x.pol)
			if c := x.pol.Consumer; c != nil {
				consumer = c.Name
			}
		}
	}
	rm.Observe(b2s(x.ctx.Method()), status, total, x.result.Upstream)
	e.inflight.Add(-1)

	e.accessMu.RLock()
	if al := e.opts.AccessLog; al != nil {
		ent := accesslog.Entry{
			Time:             x.start,
			RequestID:        b2s(x.reqID),
			Route:            routeName,
			Service:          serviceName,
			Consumer:         consumer,
			Method:           b2s(x.ctx.Method()),
			Path:             b2s(x.path),
			Status:           status,
			Bytes:            bytes,
			UpstreamDuration: x.result.Upstream,
			TotalDuration:    total,
			ClientIP:         b2s(x.client.AppendTo(x.ipBuf[:0])),
		}
		if x.path == nil {
			ent.Path = b2s(x.ctx.Request.Header.RequestURI())
		}
		if t := x.result.Target; t != nil {
			ent.UpstreamTarget = t.Addr
		}
		al.Log(&ent)
	}
	e.accessMu.RUnlock()

	x.reset()
	exchangePool.Put(x)
}

func (x *exchange) reset() {
	x.pol.Clear()
	*x = exchange{reqID: x.reqID[:0], uri: x.uri[:0], pathBuf: x.pathBuf[:0], pathOwn: x.pathOwn[:0], keyBuf: x.keyBuf[:0], pol: x.pol}
}

// identifyClient finds the client's address: the TCP peer, or, when the peer
// is a trusted proxy, the right-most address in X-Forwarded-For that is not
// itself a trusted proxy.
func (x *exchange) identifyClient(ctx *fasthttp.RequestCtx) {
	x.peer = peerAddr(ctx)
	x.client = x.peer
	s := x.snap
	if len(s.trusted) == 0 || !s.trustedPeer(x.peer) {
		return
	}
	x.trusted = true
	x.client = s.clientAddress(x.peer, ctx.Request.Header.PeekAll("X-Forwarded-For"))
}

// clientAddress walks X-Forwarded-For (all its lines, as one list) from the
// right: each hop added by a trusted proxy is skipped, and the first address
// not itself a trusted proxy is the client. A malformed entry ends the walk
// at the last address that could be believed.
func (s *snapshot) clientAddress(peer netip.Addr, xff [][]byte) netip.Addr {
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for len(v) > 0 {
			var item []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				item, v = v[j+1:], v[:j]
			} else {
				item, v = v, nil
			}
			item = bytes.Trim(item, " \t")
			a, err := netip.ParseAddr(b2s(item))
			if err != nil || a.Zone() != "" { // a zone means nothing across hosts
				return client
			}
			client = a.Unmap()
			if !s.trustedPeer(client) {
				return client
			}
		}
	}
	return client
}

func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

// splitRequestURI returns the path and raw query of an origin-form or
// absolute-form request target.
func splitRequestURI(uri []byte) (path, query []byte, ok bool) {
	if len(uri) == 0 {
		return nil, nil, false
	}
	if uri[0] != '/' {
		// absolute-form: scheme "://" authority path
		i := bytes.Index(uri, []byte("://"))
		if i <= 0 {
			return nil, nil, false
		}
		rest := uri[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			j = len(rest)
		}
		uri = rest[j:]
		if len(uri) == 0 || uri[0] == '?' {
			uri = append([]byte("/"), uri...)
		}
	}
	for i, c := range uri {
		if c == '?' {
			return uri[:i], uri[i+1:], true
		}
		if c == '#' {
			return uri[:i], nil, true
		}
	}
	return uri, nil, true
}

// fastHeader lets the router read fasthttp request headers.
type fastHeader struct{ h *fasthttp.RequestHeader }

func (f *fastHeader) Get(name string) string { return b2s(f.h.Peek(name)) }

// b2s views bytes as a string without copying. Only for values that are
// used and dropped before the bytes change: within one request, whose
// buffers fasthttp keeps until the response is written.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
