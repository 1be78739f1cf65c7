package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/upstream/breaker"
)

func TestNewPoolTargets(t *testing.T) {
	r := newRegistry(t, RegistryOptions{})
	p := mustPool(t, r, config.Service{Name: "s", Targets: []config.Target{
		{URL: "http://a.internal"},
		{URL: "https://b.internal", Weight: intp(3)},
		{URL: "h2c://127.0.0.1:50051"},
		{URL: "HTTP://[::1]:8080/base"},
	}})
	want := []struct {
		scheme, addr, host string
		weight             int
	}{
		{"http", "a.internal:80", "a.internal", 1},
		{"https", "b.internal:443", "b.internal", 3},
		{"h2c", "127.0.0.1:50051", "127.0.0.1:50051", 1},
		{"http", "[::1]:8080", "[::1]:8080", 1},
	}
	for i, tg := range p.Targets() {
		w := want[i]
		if tg.Index != i || tg.Scheme != w.scheme || tg.Addr != w.addr || tg.Host != w.host || tg.Weight != w.weight {
			t.Errorf("target %d = {%d %s %s %s %d}, want %+v", i, tg.Index, tg.Scheme, tg.Addr, tg.Host, tg.Weight, w)
		}
	}
	if p.Service() != "s" {
		t.Errorf("Service() = %q", p.Service())
	}
}

func TestNewPoolErrors(t *testing.T) {
	tests := []struct {
		name string
		svc  config.Service
		want string
	}{
		{"no targets", config.Service{Name: "s"}, "no targets"},
		{"bad scheme", config.Service{Name: "s", Targets: []config.Target{{URL: "ftp://x"}}}, "scheme"},
		{"no host", config.Service{Name: "s", Targets: []config.Target{{URL: "http://"}}}, "missing host"},
		{"duplicate", config.Service{Name: "s", Targets: []config.Target{{URL: "http://x"}, {URL: "http://x"}}}, "duplicate"},
		{"negative weight", config.Service{Name: "s", Targets: []config.Target{{URL: "http://x", Weight: intp(-1)}}}, "negative"},
		{"unknown balancing", config.Service{Name: "s", Balancing: "fastest", Targets: []config.Target{{URL: "http://x"}}}, "unknown balancing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			_, err := r.NewPool(tt.svc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestAttempts(t *testing.T) {
	tests := []struct {
		attempts *int
		want     int
	}{
		{nil, 2}, {intp(0), 1}, {intp(1), 1}, {intp(4), 4},
	}
	for _, tt := range tests {
		s := svc("s", "", 1)
		s.Retries.Attempts = tt.attempts
		p := mustPool(t, newRegistry(t, RegistryOptions{}), s)
		if got := p.Attempts(); got != tt.want {
			t.Errorf("attempts %v: Attempts() = %d, want %d", tt.attempts, got, tt.want)
		}
	}
}

func TestPassiveHealth(t *testing.T) {
	clk := newClock()
	ev := newHealthEvents()
	r := newRegistry(t, RegistryOptions{Now: clk.Now, OnHealthChange: ev.record})
	s := svc("s", RoundRobin, 1, 1)
	s.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyStatuses: []int{503}, UnhealthyThreshold: 3, Cooldown: config.Duration(30 * time.Second)}
	p := mustPool(t, r, s)
	a, b := p.Targets()[0], p.Targets()[1]
	done := func(o Outcome) { p.Start(a); p.Done(a, o) }
	onlyB := func() bool {
		for range 4 {
			if mustPick(t, p, nil) != b {
				return false
			}
		}
		return true
	}

	for _, o := range []Outcome{{Status: 503}, {Status: 503}, {Status: 200}, {Status: 503}, {Status: 404}, {Status: 500}} {
		done(o)
	}
	if onlyB() || !a.Healthy() {
		t.Fatal("ejected without 3 consecutive failures (200 resets; 404 and 500 are not listed)")
	}
	done(Outcome{Status: 503})
	done(Outcome{Err: Timeout})
	done(Outcome{Err: Reset})
	if !onlyB() || a.Healthy() {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	if got, want := ev.list(), []string{"s http://127.0.0.1:9001 true", "s http://127.0.0.1:9002 true", "s http://127.0.0.1:9001 false"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}

	clk.Advance(29 * time.Second)
	if !onlyB() {
		t.Fatal("ejected target picked before the cooldown ended")
	}
	clk.Advance(time.Second)
	if onlyB() {
		t.Fatal("target not tried again after the cooldown")
	}
	done(Outcome{Err: ConnectFailed}) // half-open: one failure ejects again
	if !onlyB() {
		t.Fatal("failure after cooldown did not eject again")
	}
	clk.Advance(30 * time.Second)
	done(Outcome{Status: 200}) // half-open: one success heals
	ev.await(t, "s http://127.0.0.1:9001 true")
	if onlyB() || !a.Healthy() {
		t.Fatal("success after cooldown did not make the target healthy")
	}
}

func TestCircuitBreaker(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, RegistryOptions{Now: clk.Now})
	s := svc("s", RoundRobin, 1, 1)
	s.CircuitBreaker = &config.CircuitBreaker{ErrorRatio: 0.5, MinRequests: 4, Window: config.Duration(10 * time.Second), OpenFor: config.Duration(20 * time.Second)}
	p := mustPool(t, r, s)
	call := func(o Outcome) error {
		tg, err := p.Pick(nil, nil)
		if err != nil {
			return err
		}
		p.Start(tg)
		p.Done(tg, o)
		return nil
	}
	for _, o := range []Outcome{{Status: 200}, {Status: 500}, {Status: 404}, {Err: Reset}} {
		if err := call(o); err != nil {
			t.Fatalf("closed breaker: %v", err)
		}
	}
	// 2 of 4 failed (500 and reset; 404 is the client's problem).
	if err := call(Outcome{Status: 200}); err != ErrCircuitOpen || p.BreakerState() != breaker.Open {
		t.Fatalf("err = %v, state %v; want ErrCircuitOpen", err, p.BreakerState())
	}
	clk.Advance(20 * time.Second)
	if err := call(Outcome{Status: 502}); err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if err := call(Outcome{Status: 200}); err != ErrCircuitOpen {
		t.Fatalf("failed probe did not reopen: err = %v", err)
	}
	clk.Advance(20 * time.Second)
	if err := call(Outcome{Status: 200}); err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if p.BreakerState() != breaker.Closed {
		t.Fatalf("successful probe left state %v", p.BreakerState())
	}
}

// flakyServer is a real HTTP server whose /healthz status can be changed.
type flakyServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newFlakyServer(t *testing.T) *flakyServer {
	f := &flakyServer{}
	f.status.Store(200)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(f.status.Load()))
	}))
	t.Cleanup(f.Close)
	return f
}

func activeSvc(name string, urls ...string) config.Service {
	s := config.Service{Name: name}
	for _, u := range urls {
		s.Targets = append(s.Targets, config.Target{URL: u})
	}
	s.HealthCheck.Active = &config.ActiveHealthCheck{
		Path: "/healthz", Interval: config.Duration(5 * time.Millisecond), Timeout: config.Duration(time.Second),
		HealthyThreshold: 2, UnhealthyThreshold: 2,
	}
	return s
}

func TestActiveHealthCheckStatus(t *testing.T) {
	srv := newFlakyServer(t)
	ev := newHealthEvents()
	r := newRegistry(t, RegistryOptions{OnHealthChange: ev.record})
	p := mustPool(t, r, activeSvc("s", srv.URL))
	ev.await(t, "s "+srv.URL+" true")

	srv.status.Store(500)
	ev.await(t, "s "+srv.URL+" false")
	if _, err := p.Pick(nil, nil); err != ErrNoHealthyTarget {
		t.Fatalf("err = %v, want ErrNoHealthyTarget", err)
	}
	srv.status.Store(200)
	ev.await(t, "s "+srv.URL+" true")
	mustPick(t, p, nil)
}

func TestActiveHealthCheckClosedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		s := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
		go s.Serve(ln)
		return s
	}
	first := serve(ln)
	ev := newHealthEvents()
	r := newRegistry(t, RegistryOptions{OnHealthChange: ev.record})
	url := "http://" + addr
	mustPool(t, r, activeSvc("s", url))

	first.Close()
	ev.await(t, "s "+url+" false")

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	second := serve(ln)
	defer second.Close()
	ev.await(t, "s "+url+" true")
}

func TestActiveCheckEndsPassiveEjection(t *testing.T) {
	srv := newFlakyServer(t)
	ev := newHealthEvents()
	r := newRegistry(t, RegistryOptions{OnHealthChange: ev.record})
	s := activeSvc("s", srv.URL)
	s.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 1, Cooldown: config.Duration(time.Hour)}
	p := mustPool(t, r, s)
	eject(p, p.Targets()[0])
	ev.await(t, "s "+srv.URL+" false")
	ev.await(t, "s "+srv.URL+" true") // healthz answers 200: back well before the hour
	mustPick(t, p, nil)
}

func TestStateSurvivesReload(t *testing.T) {
	ev := newHealthEvents()
	var removed []string
	r := newRegistry(t, RegistryOptions{
		OnHealthChange:  ev.record,
		OnTargetRemoved: func(service, target string) { removed = append(removed, service+" "+target) },
	})
	s1 := svc("s", RoundRobin, 1, 1, 1)
	s1.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 1, Cooldown: config.Duration(time.Hour)}
	old := mustPool(t, r, s1)
	ejected := old.Targets()[1]
	eject(old, ejected)
	old.Start(old.Targets()[0])

	// New snapshot: target 9003 gone, 9009 added, 9001 and 9002 kept.
	s2 := s1
	s2.Targets = []config.Target{s1.Targets[0], s1.Targets[1], {URL: "http://127.0.0.1:9009"}}
	s2.Balancing = LeastRequests
	next := mustPool(t, r, s2)
	old.Release()
	old.Release() // harmless

	if next.Targets()[1].Healthy() {
		t.Fatal("passive ejection lost across reload")
	}
	if got := next.Targets()[0].InFlight(); got != 1 {
		t.Fatalf("in-flight count after reload = %d, want 1", got)
	}
	if !slices.Equal(removed, []string{"s http://127.0.0.1:9003"}) {
		t.Fatalf("removed %q", removed)
	}
	for range 50 {
		if mustPick(t, next, nil) == next.Targets()[1] {
			t.Fatal("picked the target ejected before the reload")
		}
	}
	registered := 0
	for _, e := range ev.list() {
		if strings.HasSuffix(e, " true") && strings.Contains(e, ":9001") {
			registered++
		}
	}
	if registered != 1 {
		t.Fatalf("kept target announced %d times: %q", registered, ev.list())
	}
}

func TestCheckersFollowPools(t *testing.T) {
	a, b := newFlakyServer(t), newFlakyServer(t)
	r := NewRegistry(RegistryOptions{})
	defer r.Close()

	p1 := mustPool(t, r, activeSvc("s", a.URL, b.URL))
	if n := r.ActiveCheckers(); n != 2 {
		t.Fatalf("%d checkers, want 2", n)
	}
	kept := p1.Targets()[0].state.checker

	// Same check settings for a, b dropped: a's checker keeps running.
	p2 := mustPool(t, r, activeSvc("s", a.URL))
	p1.Release()
	if n := r.ActiveCheckers(); n != 1 {
		t.Fatalf("%d checkers after b left, want 1", n)
	}
	if p2.Targets()[0].state.checker != kept {
		t.Fatal("unchanged checker was restarted by the reload")
	}
	hits := b.hits.Load()

	// Active checks switched off: the checker stops, the target stays usable.
	plain := activeSvc("s", a.URL)
	plain.HealthCheck.Active = nil
	p3 := mustPool(t, r, plain)
	p2.Release()
	if n := r.ActiveCheckers(); n != 0 {
		t.Fatalf("%d checkers with active checks off, want 0", n)
	}
	mustPick(t, p3, nil)
	p3.Release()
	if got := b.hits.Load(); got != hits {
		t.Fatalf("removed target still probed: %d -> %d", hits, got)
	}

	// Close stops everything.
	mustPool(t, r, activeSvc("t", a.URL, b.URL))
	r.Close()
	if n := r.ActiveCheckers(); n != 0 {
		t.Fatalf("%d checkers after Close", n)
	}
	if _, err := r.NewPool(activeSvc("u", a.URL)); err == nil {
		t.Fatal("NewPool after Close succeeded")
	}
}
