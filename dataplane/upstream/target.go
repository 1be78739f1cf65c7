package upstream

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one upstream address of a Pool. Fields are read-only.
type Target struct {
	Index  int      // position in the pool, stable for the pool's life
	URL    *url.URL // as configured
	Scheme string   // http | https | h2c
	Addr   string   // host:port with the default port filled in
	Host   string   // host[:port] as in the URL, for the Host header when needed
	Weight int      // 0 means drained: never picked

	state *targetState
}

// Healthy reports whether the target may be picked now: active checks (when
// configured) say it is up and it is not passively ejected.
func (t *Target) Healthy() bool { return t.state.available(t.state.reg.now().UnixNano()) }

// InFlight is the number of requests started and not yet done on the target,
// across every pool that shares it.
func (t *Target) InFlight() int64 { return t.state.inFlight.Load() }

// targetState is the runtime state of one target of one service. It is shared
// by every Pool that lists the target and survives reloads.
type targetState struct {
	reg     *Registry
	service string
	url     string

	inFlight atomic.Int64
	// activeUp is the active checker's verdict; true when there is none.
	activeUp atomic.Bool
	// ejectedUntil is when a passive ejection's cooldown ends (unix ns), or 0.
	// After it the target takes traffic again (half-open) until one success
	// clears it or one failure ejects it again.
	ejectedUntil atomic.Int64
	// ejections counts ejections, so an active checker can tell successes
	// seen since the latest one.
	ejections    atomic.Uint64
	passiveFails atomic.Int32

	// mu orders health reports so the published state never goes backwards.
	mu       sync.Mutex
	reported bool

	// Guarded by Registry.mu.
	refs    int
	checker *checker
}

type checker struct {
	probe  activeProbe
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *targetState) available(now int64) bool {
	if !s.activeUp.Load() {
		return false
	}
	e := s.ejectedUntil.Load()
	return e == 0 || now >= e
}

// healthy is the state published to OnHealthChange: an ejected target counts
// as unhealthy until a success clears the ejection.
func (s *targetState) healthy() bool {
	return s.activeUp.Load() && s.ejectedUntil.Load() == 0
}

func (s *targetState) publish() {
	r := s.reg
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.healthy()
	if h == s.reported {
		return
	}
	s.reported = h
	r.log.Info("upstream target health changed", "service", s.service, "target", s.url, "healthy", h)
	if r.opts.OnHealthChange != nil {
		r.opts.OnHealthChange(s.service, s.url, h)
	}
}

// passivePolicy is a service's passive health check settings.
type passivePolicy struct {
	statuses  [600]bool // indexed by status code: allocation-free lookup
	threshold int32
	cooldown  time.Duration
}

func (p *passivePolicy) failed(o Outcome) bool {
	if o.Err != None {
		return true
	}
	return o.Status > 0 && o.Status < len(p.statuses) && p.statuses[o.Status]
}

// observe applies one outcome to the passive state. Failures count when
// consecutive: one success in between starts the count again.
func (s *targetState) observe(p *passivePolicy, o Outcome) {
	r := s.reg
	if !p.failed(o) {
		if s.passiveFails.Load() == 0 && s.ejectedUntil.Load() == 0 {
			return // the common case writes nothing shared
		}
		s.passiveFails.Store(0)
		if e := s.ejectedUntil.Load(); e != 0 && s.ejectedUntil.CompareAndSwap(e, 0) {
			s.publish()
		}
		return
	}
	t := r.now().UnixNano()
	if e := s.ejectedUntil.Load(); e != 0 {
		if t < e {
			return // answers to requests sent before the ejection
		}
		// A failure while half-open ejects again at once.
		if s.ejectedUntil.CompareAndSwap(e, t+int64(p.cooldown)) {
			s.ejections.Add(1)
			r.log.Warn("upstream target ejected again after cooldown", "service", s.service, "target", s.url)
		}
		return
	}
	if s.passiveFails.Add(1) < p.threshold {
		return
	}
	if s.ejectedUntil.CompareAndSwap(0, t+int64(p.cooldown)) {
		s.passiveFails.Store(0)
		s.ejections.Add(1)
		r.log.Warn("upstream target ejected by passive health check", "service", s.service, "target", s.url, "cooldown", p.cooldown)
		s.publish()
	}
}
