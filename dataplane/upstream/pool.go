package upstream

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream/breaker"
	"github.com/tollgate/tollgate/dataplane/upstream/health"
)

// Settings left at zero take the configuration's documented defaults, so a
// pool built from a configuration that skipped ApplyDefaults behaves the same.
const (
	defaultAttempts           = config.DefaultRetryAttempts
	defaultActivePath         = config.DefaultHealthPath
	defaultActiveInterval     = config.DefaultHealthInterval
	defaultActiveTimeout      = config.DefaultHealthTimeout
	defaultHealthyThreshold   = config.DefaultHealthyThreshold
	defaultUnhealthyThreshold = config.DefaultUnhealthyThreshold
	defaultPassiveThreshold   = config.DefaultPassiveUnhealthyThreshold
	defaultCooldown           = config.DefaultPassiveCooldown
)

var defaultUnhealthyStatuses = config.DefaultPassiveUnhealthyStatuses()

// Pool is the immutable set of targets of one service in one config
// snapshot. It is safe for concurrent use.
type Pool struct {
	reg      *Registry
	service  string
	targets  []*Target
	bal      balancer
	attempts int
	passive  *passivePolicy
	breaker  *breaker.Breaker
	released atomic.Bool
}

// NewPool builds the pool of svc. Targets the Registry already knows keep
// their state; new ones start healthy.
func (r *Registry) NewPool(svc config.Service) (*Pool, error) {
	if len(svc.Targets) == 0 {
		return nil, fmt.Errorf("service %q: no targets", svc.Name)
	}
	p := &Pool{reg: r, service: svc.Name, attempts: defaultAttempts}
	if a := svc.Retries.Attempts; a != nil {
		p.attempts = max(1, *a)
	}
	seen := make(map[string]bool, len(svc.Targets))
	for i, ct := range svc.Targets {
		t, err := parseTarget(ct)
		if err != nil {
			return nil, fmt.Errorf("service %q: targets[%d]: %w", svc.Name, i, err)
		}
		if seen[ct.URL] {
			return nil, fmt.Errorf("service %q: targets[%d]: duplicate target %q", svc.Name, i, ct.URL)
		}
		seen[ct.URL] = true
		t.Index = i
		p.targets = append(p.targets, t)
	}
	bal, err := newBalancer(svc.Balancing, p.targets, r.now)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", svc.Name, err)
	}
	p.bal = bal
	if ph := svc.HealthCheck.Passive; ph != nil {
		p.passive = newPassivePolicy(ph)
	}
	probes := make([]*activeProbe, len(p.targets))
	for i, t := range p.targets {
		probes[i] = activeProbeFor(svc.HealthCheck.Active, t)
		if probes[i] != nil && t.Scheme == "https" && r.opts.ClientTLS != nil {
			// Built before locking: it may read the service's CA file.
			if probes[i].tls, err = r.opts.ClientTLS(svc.TLS, t.Addr); err != nil {
				return nil, fmt.Errorf("service %q: %w", svc.Name, err)
			}
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	for i, t := range p.targets {
		t.state = r.acquire(svc.Name, svc.Targets[i].URL, probes[i])
	}
	if cb := svc.CircuitBreaker; cb != nil {
		p.breaker = r.acquireBreaker(svc.Name, breaker.Settings{
			ErrorRatio:  cb.ErrorRatio,
			MinRequests: cb.MinRequests,
			Window:      cb.Window.D(),
			OpenFor:     cb.OpenFor.D(),
		})
	}
	return p, nil
}

func parseTarget(ct config.Target) (*Target, error) {
	u, err := url.Parse(ct.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid url %q: %w", ct.URL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	var port string
	switch scheme {
	case "http", "h2c":
		port = "80"
	case "https":
		port = "443"
	default:
		return nil, fmt.Errorf("url %q: scheme must be http, https or h2c", ct.URL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("url %q: missing host", ct.URL)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	weight := 1
	if ct.Weight != nil {
		weight = *ct.Weight
	}
	if weight < 0 {
		return nil, fmt.Errorf("url %q: weight must not be negative", ct.URL)
	}
	return &Target{
		URL:    u,
		Scheme: scheme,
		Addr:   net.JoinHostPort(u.Hostname(), port),
		Host:   u.Host,
		Weight: weight,
	}, nil
}

func activeProbeFor(a *config.ActiveHealthCheck, t *Target) *activeProbe {
	if a == nil {
		return nil
	}
	path := a.Path
	if path == "" {
		path = defaultActivePath
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	scheme := t.Scheme
	if scheme == "h2c" {
		scheme = "http" // a plain HTTP/1.1 GET is enough to tell it is up
	}
	return &activeProbe{
		Probe: health.Probe{
			URL:      scheme + "://" + t.Addr + path,
			Host:     t.Host,
			Interval: a.Interval.Or(defaultActiveInterval),
			Timeout:  a.Timeout.Or(defaultActiveTimeout),
		},
		healthyThreshold:   orDefault(a.HealthyThreshold, defaultHealthyThreshold),
		unhealthyThreshold: orDefault(a.UnhealthyThreshold, defaultUnhealthyThreshold),
	}
}

func newPassivePolicy(c *config.PassiveHealthCheck) *passivePolicy {
	p := &passivePolicy{
		threshold: int32(orDefault(c.UnhealthyThreshold, defaultPassiveThreshold)),
		cooldown:  c.Cooldown.Or(defaultCooldown),
	}
	statuses := c.UnhealthyStatuses
	if len(statuses) == 0 {
		statuses = defaultUnhealthyStatuses
	}
	for _, s := range statuses {
		if s > 0 && s < len(p.statuses) {
			p.statuses[s] = true
		}
	}
	return p
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Release tells the Registry that the snapshot using p is gone. Targets no
// other live Pool references have their checkers stopped and their state
// forgotten. Calling it more than once is harmless.
func (p *Pool) Release() {
	if !p.released.CompareAndSwap(false, true) {
		return
	}
	r := p.reg
	var removed []string
	r.mu.Lock()
	for _, t := range p.targets {
		if r.releaseTarget(t.state) {
			removed = append(removed, t.state.url)
		}
	}
	if p.breaker != nil {
		r.releaseBreaker(p.service)
	}
	r.mu.Unlock()
	if r.opts.OnTargetRemoved != nil {
		for _, u := range removed {
			r.opts.OnTargetRemoved(p.service, u)
		}
	}
}

// Service is the service name.
func (p *Pool) Service() string { return p.service }

// Targets lists the targets in configuration order (Target.Index order).
func (p *Pool) Targets() []*Target { return p.targets }

// Attempts is the total number of tries a request may make (retries.attempts,
// default 2, at least 1). The proxy decides whether a retry is allowed.
func (p *Pool) Attempts() int { return p.attempts }

// BreakerState is the state of the service's circuit breaker; Closed when
// none is configured.
func (p *Pool) BreakerState() breaker.State {
	if p.breaker == nil {
		return breaker.Closed
	}
	return p.breaker.State()
}

// Pick chooses a target for one attempt. key is the consistent-hash key (nil
// for other policies, or to fall back to round robin). tried lists targets
// already attempted for this request: another target is preferred, and one
// of them is reused only when no other healthy target exists.
//
// Unhealthy targets are skipped; when none is healthy Pick returns
// ErrNoHealthyTarget instead of trying targets known to fail. When the
// circuit breaker refuses the call it returns ErrCircuitOpen. Every target
// returned must be followed by Start and Done.
func (p *Pool) Pick(key []byte, tried []*Target) (*Target, error) {
	t := p.bal.pick(key, tried)
	if t == nil && len(tried) > 0 {
		t = p.bal.pick(key, nil)
	}
	if t == nil {
		return nil, ErrNoHealthyTarget
	}
	if p.breaker != nil && !p.breaker.Allow() {
		return nil, ErrCircuitOpen
	}
	return t, nil
}

// Start marks a request in flight on t.
func (p *Pool) Start(t *Target) { t.state.inFlight.Add(1) }

// Done ends a request started on t and feeds its outcome to passive health
// checks and the circuit breaker.
func (p *Pool) Done(t *Target, o Outcome) {
	t.state.inFlight.Add(-1)
	if p.passive != nil {
		t.state.observe(p.passive, o)
	}
	if p.breaker != nil {
		p.breaker.Record(o.serverError())
	}
}
