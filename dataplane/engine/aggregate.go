package engine

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/aggregate"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/router"
	"github.com/valyala/fasthttp"
)

// Bounds of an aggregation's answers, which are held in memory until the
// combined answer goes out: each call's body, and all of them together.
const (
	maxCallBody      = 8 << 20
	maxAggregateBody = 32 << 20
)

// aggregation is a compiled aggregate route: its calls and their order.
type aggregation struct {
	plan  *aggregate.Plan
	calls []aggCall
	keys  []string
}

type aggCall struct {
	key      string
	service  *service
	optional bool
	timeout  time.Duration
}

// compileAggregation builds the calls of an aggregate route. Path
// parameters were checked against the route's paths when the
// configuration was validated.
func (s *snapshot) compileAggregation(rc *config.Route) (*aggregation, error) {
	a := &aggregation{calls: make([]aggCall, len(rc.Aggregate)), keys: make([]string, len(rc.Aggregate))}
	specs := make([]aggregate.Spec, len(rc.Aggregate))
	for i, c := range rc.Aggregate {
		sv := s.services[c.Service]
		if sv == nil {
			return nil, fmt.Errorf("aggregate[%d]: unknown service %q", i, c.Service)
		}
		a.calls[i] = aggCall{key: c.Key, service: sv, optional: c.Optional, timeout: c.Timeout.Or(sv.responseTimeout)}
		a.keys[i] = c.Key
		specs[i] = aggregate.Spec{Key: c.Key, Path: c.Path}
	}
	plan, err := aggregate.Compile(specs, nil)
	if err != nil {
		return nil, err
	}
	a.plan = plan
	return a, nil
}

// aggRun is one request's aggregation. The calls run in goroutines of
// their own; the request's goroutine starts them as their inputs become
// known and answers as soon as the outcome is settled, even while calls
// that no longer matter are still running. So the run is shared: each
// goroutine and the request hold a reference, and the last one out
// recycles it. Goroutines touch only their own slot and the atomics.
type aggRun struct {
	agg    *aggregation
	sched  aggregate.Schedule
	header fasthttp.RequestHeader // sent with every call
	slots  []aggSlot
	done   chan int // indexes of finished calls
	refs   atomic.Int32
	total  atomic.Int64 // answer bytes of every call so far

	// Read on the request's goroutine only.
	consumer    string
	hasConsumer bool
	params      [router.MaxParams][2]string
	nParams     int
	results     []aggregate.Result
	now         []int // calls that failed before they were sent
	out         []byte
}

// aggSlot is one call of a run.
type aggSlot struct {
	call  proxy.Call
	uri   []byte
	hash  []byte
	body  []byte
	value any // the decoded answer, when another call reads its fields
	// The outcome: status as listed under "_errors", and the error ("" on
	// success); answer is the status and code of the request's error
	// answer when the call was required.
	status int
	err    string
	answer int
	code   string
}

var aggRunPool = sync.Pool{New: func() any { return new(aggRun) }}

func acquireAggRun(a *aggregation) *aggRun {
	r := aggRunPool.Get().(*aggRun)
	n := a.plan.Len()
	r.agg = a
	if cap(r.slots) < n {
		r.slots = make([]aggSlot, n)
		r.results = make([]aggregate.Result, n)
	}
	r.slots, r.results = r.slots[:n], r.results[:n]
	if cap(r.done) < n {
		r.done = make(chan int, n)
	}
	r.sched.Reset(a.plan)
	r.refs.Store(1)
	return r
}

// release drops one reference; the last one recycles the run.
func (r *aggRun) release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	for len(r.done) > 0 {
		<-r.done
	}
	for i := range r.slots {
		s := &r.slots[i]
		body, uri, hash := s.body[:0], s.uri[:0], s.hash[:0]
		if cap(body) > 64<<10 { // a rare large answer should not stay pinned
			body = nil
		}
		*s = aggSlot{body: body, uri: uri, hash: hash}
	}
	clear(r.results)
	if cap(r.out) > 64<<10 {
		r.out = nil
	}
	r.agg, r.consumer, r.hasConsumer, r.nParams, r.now = nil, "", false, 0, r.now[:0]
	r.total.Store(0)
	aggRunPool.Put(r)
}

// serveAggregate answers an aggregate route: it makes the calls, each as
// soon as what its path needs is known, and answers with their combined
// JSON, or with an error when a required call failed.
func (x *exchange) serveAggregate(ctx *fasthttp.RequestCtx, m router.Match, query []byte) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		x.fail(fasthttp.StatusMethodNotAllowed, proxy.CodeMethodNotAllowed, "an aggregate route answers GET and HEAD")
		return
	}
	if x.pol.QueryEdited() {
		query = x.pol.RawQuery()
	}
	run := acquireAggRun(x.route.aggregate)
	defer run.release()
	run.begin(x, ctx, &m)
	x.runAggregate(ctx, run, query)
}

// begin takes from the request what the calls need: the headers they all
// send, the consumer and the path parameters.
func (r *aggRun) begin(x *exchange, ctx *fasthttp.RequestCtx, m *router.Match) {
	x.req = proxy.Request{RequestID: x.reqID, ClientIP: x.client, Peer: x.peer, TrustedPeer: x.trusted, Proto: proto(ctx)}
	if c := x.pol.Consumer; c != nil {
		r.consumer, r.hasConsumer = c.Name, true
		x.req.ConsumerName = c.HeaderName()
		if !x.pol.ConsumerGroupsHidden() {
			x.req.ConsumerGroups = c.HeaderGroups()
		}
	}
	proxy.CallHeader(ctx, &x.req, &r.header)
	for i := range m.NumParams() {
		name, value := m.ParamAt(i)
		if strings.IndexByte(value, '%') >= 0 {
			// Parameters come from the normalised path, still escaped;
			// they are escaped again where they are put.
			if v, err := url.PathUnescape(value); err == nil {
				value = v
			}
		}
		r.params[i] = [2]string{name, value}
	}
	r.nParams = m.NumParams()
}

// runAggregate starts the calls that need nothing, then, as each call
// ends, those it unblocks, until the answer is settled.
func (x *exchange) runAggregate(ctx *fasthttp.RequestCtx, run *aggRun, query []byte) {
	a := run.agg
	inflight := 0
	start := func(ready []int) {
		for _, i := range ready {
			switch {
			case !run.prepare(x, ctx, i, query):
				run.now = append(run.now, i)
			case len(ready) == 1 && inflight == 0 && len(run.now) == 0:
				// Nothing else is under way, so waiting for this call is
				// all there is to do: make it here, without a goroutine
				// (the common case of each step of a chain).
				run.exec(i)
				run.now = append(run.now, i)
			default:
				run.refs.Add(1)
				inflight++
				go run.call(i)
			}
		}
	}
	start(run.sched.Start())
	for {
		var i int
		switch {
		case len(run.now) > 0:
			i, run.now = run.now[len(run.now)-1], run.now[:len(run.now)-1]
		case inflight > 0:
			i = <-run.done
			inflight--
		default:
			x.answerAggregate(ctx, run)
			return
		}
		s := &run.slots[i]
		if s.err != "" && !a.calls[i].optional {
			x.failAggregate(i, s.answer, s.code, s.err)
			return
		}
		ready, skipped := run.sched.Finish(i, s.err == "")
		for _, j := range skipped {
			msg := run.skipReason(j)
			if !a.calls[j].optional {
				x.failAggregate(j, fasthttp.StatusBadGateway, proxy.CodeUpstreamUnavailable, msg)
				return
			}
			run.slots[j].status, run.slots[j].err = fasthttp.StatusFailedDependency, msg
		}
		start(ready)
	}
}

// skipReason says why call j, skipped, was not made: a call it needs
// failed or was not made either.
func (r *aggRun) skipReason(j int) string {
	for _, d := range r.agg.plan.Deps(j) {
		switch r.sched.State(d) {
		case aggregate.Failed:
			return fmt.Sprintf("not made: it needs the answer of %q, which failed", r.agg.keys[d])
		case aggregate.Skipped:
			return fmt.Sprintf("not made: it needs the answer of %q, which was not made", r.agg.keys[d])
		}
	}
	return "not made"
}

// prepare fills call i's request on the request's goroutine: its path from
// the template, the client's query when the call has none of its own, and
// the hash key of its service. It reports false, with the slot's outcome
// set, when the path cannot be built.
func (r *aggRun) prepare(x *exchange, ctx *fasthttp.RequestCtx, i int, query []byte) bool {
	s := &r.slots[i]
	c := &r.agg.calls[i]
	tmpl := r.agg.plan.Template(i)
	uri, err := tmpl.Expand(s.uri[:0], r)
	s.uri = uri
	if err != nil {
		s.err = "not made: " + err.Error()
		s.status, s.answer, s.code = fasthttp.StatusFailedDependency, fasthttp.StatusBadGateway, proxy.CodeUpstreamUnavailable
		if ee, ok := err.(*aggregate.ExpandError); ok {
			switch ee.Source {
			case aggregate.Consumer:
				s.status, s.answer, s.code = fasthttp.StatusUnauthorized, fasthttp.StatusUnauthorized, "unauthorized"
				s.err = "not made: no authenticated consumer for {consumer}"
			case aggregate.Param:
				s.status, s.answer, s.code = fasthttp.StatusBadRequest, fasthttp.StatusBadRequest, proxy.CodeBadRequest
			}
		}
		return false
	}
	if len(query) > 0 && !tmpl.HasQuery() {
		s.uri = append(append(s.uri, '?'), query...)
	}
	sv := c.service
	s.hash = append(s.hash[:0], x.hashKey(ctx, sv)...)
	s.call = proxy.Call{
		Pool: sv.pool, Clients: sv.clients, H2: sv.h2,
		URI: s.uri, HashKey: s.hash, Header: &r.header,
		Timeout: c.timeout, MaxBody: maxCallBody,
	}
	return true
}

// Consumer, Param and Field give the placeholders' values
// (aggregate.Values), on the request's goroutine.
func (r *aggRun) Consumer() (string, bool) { return r.consumer, r.hasConsumer }

func (r *aggRun) Param(name string) (string, bool) {
	for _, p := range r.params[:r.nParams] {
		if p[0] == name {
			return p[1], p[1] != ""
		}
	}
	return "", false
}

func (r *aggRun) Field(call int, path []string) (string, bool) {
	return aggregate.Lookup(r.slots[call].value, path)
}

// call makes call i in its own goroutine and reports it on done.
func (r *aggRun) call(i int) {
	r.exec(i)
	r.done <- i
	r.release()
}

// exec makes call i and records its outcome in its slot.
func (r *aggRun) exec(i int) {
	s := &r.slots[i]
	res := proxy.Get(&s.call, s.body[:0])
	s.body = res.Body
	switch {
	case res.Err != nil:
		s.setTransportFailure(&res)
	case res.Status < 200 || res.Status > 299:
		s.fail(res.Status, "upstream answered "+strconv.Itoa(res.Status)+" "+http.StatusText(res.Status))
	case r.total.Add(int64(len(s.body))) > maxAggregateBody:
		s.fail(res.Status, "not used: the answers together are larger than "+strconv.Itoa(maxAggregateBody>>20)+" MiB")
	case r.agg.plan.Referenced(i):
		v, err := aggregate.Decode(s.body)
		if err != nil {
			s.fail(res.Status, "answer is not JSON")
		}
		s.value = v
	case !aggregate.IsJSON(s.body):
		s.fail(res.Status, "answer is not JSON")
	}
}

// fail records an answer that cannot be used: for the client, the
// upstream is at fault (502).
func (s *aggSlot) fail(status int, msg string) {
	s.status, s.err, s.answer, s.code = status, msg, fasthttp.StatusBadGateway, proxy.CodeUpstreamUnavailable
}

func (s *aggSlot) setTransportFailure(res *proxy.CallResult) {
	s.answer, s.code = fasthttp.StatusBadGateway, proxy.CodeUpstreamUnavailable
	s.status = res.Status
	switch res.Code {
	case proxy.CodeUpstreamTimeout:
		s.answer, s.code = fasthttp.StatusGatewayTimeout, proxy.CodeUpstreamTimeout
		s.err = "the upstream service did not answer in time"
		if s.status == 0 {
			s.status = fasthttp.StatusGatewayTimeout
		}
		return
	case proxy.CodeBodyTooLarge:
		s.err = "answer larger than " + strconv.Itoa(maxCallBody>>20) + " MiB"
	case proxy.CodeCircuitOpen:
		s.err = "the upstream service is failing; calls are paused (circuit breaker open)"
		s.status = fasthttp.StatusServiceUnavailable
	case proxy.CodeNoHealthyUpstream:
		s.err = "no healthy upstream target"
		s.status = fasthttp.StatusServiceUnavailable
	default:
		s.err = "the upstream service is unavailable"
	}
	if s.status == 0 {
		s.status = fasthttp.StatusBadGateway
	}
}

// failAggregate answers with the error of required call i.
func (x *exchange) failAggregate(i, status int, code, msg string) {
	c := &x.route.aggregate.calls[i]
	x.ctx.Response.Header.Set("X-Aggregate-Complete", "false")
	x.fail(status, code, fmt.Sprintf("call %q (service %s): %s", c.key, c.service.name, msg))
}

// answerAggregate writes the combined answer.
func (x *exchange) answerAggregate(ctx *fasthttp.RequestCtx, run *aggRun) {
	complete := "true"
	for i := range run.slots {
		s := &run.slots[i]
		if s.err != "" {
			run.results[i] = aggregate.Result{Status: s.status, Error: s.err}
			complete = "false"
		} else {
			run.results[i] = aggregate.Result{Body: s.body}
		}
	}
	run.out = aggregate.AppendAnswer(run.out[:0], run.agg.keys, run.results)
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.SetBytesV("X-Request-ID", x.reqID)
	ctx.Response.Header.Set("X-Aggregate-Complete", complete)
	ctx.Response.SetBody(run.out)
	x.status = fasthttp.StatusOK
	x.respond()
	x.finish(int64(len(run.out)))
}
