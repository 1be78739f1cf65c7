package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream/breaker"
	"github.com/tollgate/tollgate/dataplane/upstream/health"
)

// RegistryOptions configure a Registry. The zero value works.
type RegistryOptions struct {
	// OnHealthChange is called when a target's health changes, and once with
	// healthy=true when a target is first registered. Calls for one target
	// are ordered. It must not call back into the Registry.
	OnHealthChange func(service, target string, healthy bool)
	// OnTargetRemoved is called when no live Pool references a target any
	// more and its state is forgotten (e.g. to delete its metric series).
	OnTargetRemoved func(service, target string)
	// Logger receives health transitions; nil means slog.Default().
	Logger *slog.Logger
	// HTTPClient sends active health probes. nil means a dedicated client.
	// Redirects are never followed: a 3xx answer is healthy. The probes of an
	// https target go through a copy of its *http.Transport (when it is one)
	// holding the target's TLS configuration from ClientTLS.
	HTTPClient *http.Client
	// ClientTLS gives the TLS configuration for probing an https target at
	// addr (host:port) of a service with tls settings s (nil: none set), so
	// that probes verify targets exactly as the proxy does: pass
	// proxy.Transport.ClientTLS. An error (an unreadable CA file) fails
	// NewPool. nil means the HTTP client's own TLS settings (system roots,
	// the target's host), which ignore services' tls settings.
	ClientTLS func(s *config.UpstreamTLS, addr string) (*tls.Config, error)
	// Now is the clock for passive cooldowns and circuit breakers; nil means
	// time.Now.
	Now func() time.Time
}

// Registry holds per-target runtime state keyed by service name and target
// URL so that it survives configuration reloads.
type Registry struct {
	opts   RegistryOptions
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	running atomic.Int64 // active checker goroutines

	mu       sync.Mutex
	closed   bool
	targets  map[targetKey]*targetState
	breakers map[string]*sharedBreaker
}

type targetKey struct{ service, url string }

type sharedBreaker struct {
	refs     int
	settings breaker.Settings
	b        *breaker.Breaker
}

// activeProbe is a target's active check as configured; a reload that
// changes nothing (see same) keeps the running checker.
type activeProbe struct {
	health.Probe
	healthyThreshold   int
	unhealthyThreshold int
	tls                *tls.Config // https targets with RegistryOptions.ClientTLS; else nil
}

// same reports whether q checks exactly like p. TLS configurations are
// rebuilt on every reload, so they compare by what verification depends on.
func (p *activeProbe) same(q *activeProbe) bool {
	return p.Probe == q.Probe && p.healthyThreshold == q.healthyThreshold &&
		p.unhealthyThreshold == q.unhealthyThreshold && sameTLS(p.tls, q.tls)
}

func sameTLS(a, b *tls.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ServerName == b.ServerName && a.InsecureSkipVerify == b.InsecureSkipVerify &&
		a.MinVersion == b.MinVersion && a.MaxVersion == b.MaxVersion && a.RootCAs.Equal(b.RootCAs)
}

// errClosed is returned by NewPool after Close.
var errClosed = errors.New("upstream: registry closed")

// NewRegistry returns an empty Registry.
func NewRegistry(opts RegistryOptions) *Registry {
	r := &Registry{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		targets:  make(map[targetKey]*targetState),
		breakers: make(map[string]*sharedBreaker),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // probes go straight to the target
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.client = &c
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close stops every checker and waits for them. Pools built earlier keep
// working with the state they have; NewPool fails from now on.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.cancel()
	for _, s := range r.targets {
		r.stopChecker(s)
	}
}

// ActiveCheckers is the number of running active health checkers.
func (r *Registry) ActiveCheckers() int { return int(r.running.Load()) }

// acquire returns the state of a target with one more reference, creating it
// (healthy) on first use, and starts, restarts or stops its checker to match
// probe. Called with r.mu held.
func (r *Registry) acquire(service, rawURL string, probe *activeProbe) *targetState {
	key := targetKey{service, rawURL}
	s, ok := r.targets[key]
	if !ok {
		s = &targetState{reg: r, service: service, url: rawURL, reported: true}
		s.activeUp.Store(true)
		r.targets[key] = s
		if r.opts.OnHealthChange != nil {
			r.opts.OnHealthChange(service, rawURL, true)
		}
	}
	s.refs++
	switch {
	case probe == nil && s.checker != nil:
		r.stopChecker(s)
		s.activeUp.Store(true) // nothing checks it actively any more
		s.publish()
	case probe != nil && (s.checker == nil || !s.checker.probe.same(probe)):
		r.stopChecker(s)
		r.startChecker(s, *probe)
	}
	return s
}

// releaseTarget drops one reference; the last one stops the checker and
// forgets the state. Called with r.mu held; returns whether it was forgotten.
func (r *Registry) releaseTarget(s *targetState) bool {
	s.refs--
	if s.refs > 0 {
		return false
	}
	r.stopChecker(s)
	delete(r.targets, targetKey{s.service, s.url})
	return true
}

// startChecker runs the active checker of s. Called with r.mu held.
func (r *Registry) startChecker(s *targetState, p activeProbe) {
	ctx, cancel := context.WithCancel(r.ctx)
	c := &checker{probe: p, cancel: cancel, done: make(chan struct{})}
	s.checker = c
	client, closeIdle := r.probeClient(p.tls)
	r.running.Add(1)
	go func() {
		defer close(c.done)
		defer r.running.Add(-1)
		defer closeIdle()
		verdict := health.NewTracker(s.activeUp.Load(), p.healthyThreshold, p.unhealthyThreshold)
		ejections, okSinceEjection := s.ejections.Load(), 0
		health.Run(ctx, client, p.Probe, func(ok bool, err error) {
			if up, changed := verdict.Observe(ok); changed {
				if !up {
					r.log.Warn("upstream target failed active health checks", "service", s.service, "target", s.url, "error", err)
				}
				s.activeUp.Store(up)
				s.publish()
			}
			// healthy_threshold successes after a passive ejection end it early.
			if n := s.ejections.Load(); n != ejections {
				ejections, okSinceEjection = n, 0
			}
			if !ok {
				okSinceEjection = 0
				return
			}
			okSinceEjection++
			if okSinceEjection >= p.healthyThreshold {
				if e := s.ejectedUntil.Load(); e != 0 && s.ejectedUntil.CompareAndSwap(e, 0) {
					s.passiveFails.Store(0)
					s.publish()
				}
			}
		})
	}()
}

// probeClient is the client of a checker: the shared one, or for a TLS
// configuration a copy with a transport of its own holding it (connections
// verified one way must not serve a probe meant to verify another way).
// closeIdle releases that transport's connections when the checker ends.
func (r *Registry) probeClient(cfg *tls.Config) (client *http.Client, closeIdle func()) {
	rt := r.client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	base, ok := rt.(*http.Transport)
	if cfg == nil || !ok {
		return r.client, func() {}
	}
	tr := base.Clone()
	tr.TLSClientConfig = cfg.Clone() // the transport adds ALPN names to it
	c := *r.client
	c.Transport = tr
	return &c, tr.CloseIdleConnections
}

// stopChecker cancels the checker of s and waits for it, so no probe result
// lands after it returns. Called with r.mu held; the checker never takes it.
func (r *Registry) stopChecker(s *targetState) {
	if s.checker == nil {
		return
	}
	s.checker.cancel()
	<-s.checker.done
	s.checker = nil
}

// acquireBreaker returns the service's breaker, replacing it when the
// settings changed. Called with r.mu held.
func (r *Registry) acquireBreaker(service string, s breaker.Settings) *breaker.Breaker {
	sb, ok := r.breakers[service]
	if !ok {
		sb = &sharedBreaker{}
		r.breakers[service] = sb
	}
	if sb.b == nil || sb.settings != s {
		sb.settings = s
		sb.b = breaker.New(s, r.now)
	}
	sb.refs++
	return sb.b
}

// releaseBreaker drops one reference. Called with r.mu held.
func (r *Registry) releaseBreaker(service string) {
	sb, ok := r.breakers[service]
	if !ok {
		return
	}
	sb.refs--
	if sb.refs <= 0 {
		delete(r.breakers, service)
	}
}
