package upstream

import (
	"fmt"
	"github.com/tollgate/tollgate/internal/testutil"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
)

func newClock() *testutil.Clock { return testutil.NewClock() }

func intp(i int) *int { return &i }

// svc builds a service with one target per weight on unroutable-by-design
// loopback ports (nothing is dialled: these pools are never checked actively).
func svc(name, balancing string, weights ...int) config.Service {
	s := config.Service{Name: name, Balancing: balancing}
	for i, w := range weights {
		s.Targets = append(s.Targets, config.Target{URL: fmt.Sprintf("http://127.0.0.1:%d", 9001+i), Weight: intp(w)})
	}
	return s
}

func newRegistry(t *testing.T, opts RegistryOptions) *Registry {
	t.Helper()
	r := NewRegistry(opts)
	t.Cleanup(r.Close)
	return r
}

func mustPool(t *testing.T, r *Registry, s config.Service) *Pool {
	t.Helper()
	p, err := r.NewPool(s)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	return p
}

func mustPick(t *testing.T, p *Pool, key []byte, tried ...*Target) *Target {
	t.Helper()
	tg, err := p.Pick(key, tried)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return tg
}

// eject marks tg passively unhealthy; the pool must have passive checks with
// unhealthy_threshold 1.
func eject(p *Pool, tg *Target) {
	p.Start(tg)
	p.Done(tg, Outcome{Err: ConnectFailed})
}

// healthEvents records OnHealthChange calls.
type healthEvents struct {
	mu     sync.Mutex
	events []string
	ch     chan string
}

func newHealthEvents() *healthEvents { return &healthEvents{ch: make(chan string, 1000)} }

func (h *healthEvents) record(service, target string, healthy bool) {
	e := fmt.Sprintf("%s %s %v", service, target, healthy)
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
	h.ch <- e
}

func (h *healthEvents) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// await waits for the event want, failing after a deadline.
func (h *healthEvents) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-h.ch:
			if e == want {
				return
			}
		case <-deadline:
			t.Fatalf("no event %q; saw %q", want, h.list())
		}
	}
}
