package engine

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/proxy"
	"github.com/tollgate/tollgate/dataplane/router"
	"github.com/tollgate/tollgate/dataplane/upstream"
	"github.com/tollgate/tollgate/observe/metrics"
	"github.com/tollgate/tollgate/openapi"
	"github.com/valyala/fasthttp"
)

// snapshot is one compiled configuration. It is immutable once published:
// requests read it through a single atomic load and never lock.
type snapshot struct {
	version  int64
	router   *router.Router
	routes   []route
	services map[string]*service
	trusted  []netip.Prefix
	// maxConcurrent is server.limits.max_concurrent_requests (0: unlimited).
	maxConcurrent int64
	// maxBody is server.limits.max_body_bytes.
	maxBody int
	// maxURI is server.limits.max_uri_bytes (0: only the header limit).
	maxURI int
	// bodyTimeout bounds each wait for a client's body bytes.
	bodyTimeout time.Duration
	noRoute     *metrics.RouteMetrics
	// consumers is the directory the routes' policies were built with.
	consumers consumerDirectory
}

// consumerDirectory is a directory with the configuration list it was made
// of. The control plane and a data plane's replica hand out the same
// (never written) list while no consumer changes, so a compile that is
// given the list the previous snapshot was made of keeps its directory
// rather than rebuilding one per consumer.
type consumerDirectory struct {
	first *config.Consumer // the list's first element: its identity
	n     int
	dir   *policy.Directory
}

// directoryFor returns the directory of cs, the previous snapshot's when
// cs is the very list it was made of.
func (e *Engine) directoryFor(cs []config.Consumer) consumerDirectory {
	if len(cs) == 0 {
		return consumerDirectory{dir: policy.NewDirectory(cs)}
	}
	if prev := e.current.Load(); prev != nil && prev.consumers.first == &cs[0] && prev.consumers.n == len(cs) {
		return prev.consumers
	}
	return consumerDirectory{first: &cs[0], n: len(cs), dir: policy.NewDirectory(cs)}
}

type route struct {
	name         string
	service      *service // nil for a mock or aggregate route
	stripPath    bool
	preserveHost bool
	websocket    bool
	mock         *mockResponse
	aggregate    *aggregation
	metrics      *metrics.RouteMetrics
	// chain is the route's policies; nil when it has none.
	chain *policy.Chain
}

type service struct {
	name            string
	index           int // in the configuration's services
	pool            *upstream.Pool
	clients         []*fasthttp.HostClient
	h2              []http.RoundTripper // h2c targets
	dial            func(*upstream.Target) (net.Conn, error)
	responseTimeout time.Duration
	hashOn          hashSource
	hashHeader      string
}

// hashSource says where consistent_hash takes its key.
type hashSource uint8

const (
	hashNone hashSource = iota
	hashIP
	hashConsumer
	hashHeader
)

type mockResponse struct {
	status  int
	headers [][2]string
	body    []byte
}

// compile builds a snapshot from a validated configuration. It runs off the
// hot path; on error nothing of the new snapshot stays alive.
func (e *Engine) compile(cfg *config.Config, version int64) (_ *snapshot, err error) {
	s := &snapshot{
		version:       version,
		services:      make(map[string]*service, len(cfg.Services)),
		maxConcurrent: int64(cfg.Server.Limits.MaxConcurrentRequests),
		maxBody:       int(cfg.Server.Limits.MaxBodyBytes),
		maxURI:        cfg.Server.Limits.MaxURIBytes,
		bodyTimeout:   cfg.Server.ReadHeaderTimeout.Or(10 * time.Second),
		noRoute:       e.opts.Metrics.Route("", ""),
	}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	for _, cidr := range cfg.Server.TrustedProxies {
		p, err := parsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies: %w", err)
		}
		s.trusted = append(s.trusted, p)
	}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		pool, err := e.opts.Registry.NewPool(*svc)
		if err != nil {
			return nil, fmt.Errorf("services[%d] (%s): %w", i, svc.Name, err)
		}
		sv := &service{
			name:            svc.Name,
			index:           i,
			pool:            pool,
			responseTimeout: svc.Timeouts.Response.Or(30 * time.Second),
		}
		s.services[svc.Name] = sv
		clients, err := e.opts.Transport.ForService(pool, proxy.ServiceOptions{
			Connect: svc.Timeouts.Connect.Or(2 * time.Second), TLS: svc.TLS,
		})
		if err != nil {
			return nil, fmt.Errorf("services[%d] (%s): %w", i, svc.Name, err)
		}
		sv.clients, sv.h2, sv.dial = clients.H1, clients.H2, clients.Dial
		switch hash := svc.HashOn; {
		case hash == "ip":
			sv.hashOn = hashIP
		case hash == "consumer":
			sv.hashOn = hashConsumer
		case strings.HasPrefix(hash, "header:"):
			sv.hashOn, sv.hashHeader = hashHeader, strings.TrimPrefix(hash, "header:")
		}
	}
	s.consumers = e.directoryFor(cfg.Consumers)
	consumers := s.consumers.dir
	plans := make(map[string]*config.Plan, len(cfg.Plans))
	for i := range cfg.Plans {
		plans[cfg.Plans[i].Name] = &cfg.Plans[i]
	}
	shared := policy.NewShared()
	e.opts.State.Begin()
	rrs := make([]router.Route, 0, len(cfg.Routes))
	s.routes = make([]route, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		r := route{name: rc.Name, stripPath: rc.StripPath, preserveHost: rc.PreserveHost,
			websocket: rc.WebSocket == nil || *rc.WebSocket}
		switch {
		case len(rc.Aggregate) > 0:
			if r.aggregate, err = s.compileAggregation(rc); err != nil {
				return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.Name, err)
			}
		case rc.Mock != nil:
			if r.mock, err = compileMock(rc.Mock); err != nil {
				return nil, fmt.Errorf("routes[%d] (%s): mock: %w", i, rc.Name, err)
			}
		default:
			r.service = s.services[rc.Service]
			if r.service == nil {
				return nil, fmt.Errorf("routes[%d] (%s): unknown service %q", i, rc.Name, rc.Service)
			}
		}
		svcName := rc.Service
		if r.service == nil {
			svcName = ""
		}
		r.metrics = e.opts.Metrics.Route(rc.Name, svcName)
		var svcPolicies config.Policies
		if r.service != nil {
			svcPolicies = cfg.Services[r.service.index].Policies
		}
		r.chain, err = policy.Compile(policy.Merge(cfg.Policies, svcPolicies, rc.Policies), &policy.Build{
			Route: rc.Name, Service: svcName, Consumers: consumers, Plans: plans, State: e.opts.State, Shared: shared,
			Logger: e.opts.Logger, Metrics: e.opts.Metrics, RouteMetrics: r.metrics, Redis: cfg.Redis,
		})
		if err != nil {
			return nil, fmt.Errorf("routes[%d] (%s): %w", i, rc.Name, err)
		}
		s.routes[i] = r
		rrs = append(rrs, router.Route{
			ID: i, Hosts: rc.Hosts, Paths: rc.Paths, Methods: rc.Methods,
			Headers: rc.Headers, Priority: rc.Priority,
		})
	}
	if s.router, err = router.Compile(rrs); err != nil {
		return nil, err
	}
	return s, nil
}

// serviceName is the route's service, "" for a mock or aggregate route.
func (r *route) serviceName() string {
	if r.service == nil {
		return ""
	}
	return r.service.name
}

// release tells the upstream registry that this snapshot's pools are no
// longer used, so health checkers of removed targets stop.
func (s *snapshot) release() {
	for _, sv := range s.services {
		if sv.pool != nil {
			sv.pool.Release()
		}
	}
}

// compileMock makes a mock's answer once: the static one, or the example
// of an OpenAPI operation, with the mock's own headers over the example's.
func compileMock(m *config.Mock) (*mockResponse, error) {
	mr := &mockResponse{status: m.Status, body: []byte(m.Body)}
	headers := m.Headers
	if m.OpenAPI != "" {
		status, example, body, err := openapi.MockResponse(m.OpenAPI, m.Operation, m.Status)
		if err != nil {
			return nil, err
		}
		mr.status, mr.body = status, body
		for k, v := range m.Headers { // example's names are canonical
			example[textproto.CanonicalMIMEHeaderKey(k)] = v
		}
		headers = example
	}
	if mr.status == 0 {
		mr.status = 200
	}
	for k, v := range headers {
		mr.headers = append(mr.headers, [2]string{k, v})
	}
	return mr, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("invalid address " + strconv.Quote(s))
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (s *snapshot) trustedPeer(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
