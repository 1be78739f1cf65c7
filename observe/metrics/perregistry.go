package metrics

import (
	"runtime"
	"sync"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
)

// PerRegistry keeps one value per Prometheus registry: the metrics of a
// package that is built many times over (a policy, at every reload), made
// and registered the first time a registry asks for them. Registries are
// held weakly, so a gateway that is gone takes its entry along.
type PerRegistry[T any] struct {
	mu   sync.Mutex
	m    map[weak.Pointer[prometheus.Registry]]T
	make func(reg *prometheus.Registry) T
}

// NewPerRegistry returns a PerRegistry whose values make builds; make
// registers the value's collectors in reg, unless reg is nil (then they
// count without being exposed).
func NewPerRegistry[T any](make func(reg *prometheus.Registry) T) *PerRegistry[T] {
	return &PerRegistry[T]{make: make}
}

// Get returns reg's value, making it the first time. A nil reg gets a new
// unregistered value each time.
func (p *PerRegistry[T]) Get(reg *prometheus.Registry) T {
	if reg == nil {
		return p.make(nil)
	}
	key := weak.Make(reg)
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.m[key]; ok {
		return v
	}
	v := p.make(reg)
	if p.m == nil {
		p.m = map[weak.Pointer[prometheus.Registry]]T{}
	}
	p.m[key] = v
	runtime.AddCleanup(reg, func(key weak.Pointer[prometheus.Registry]) {
		p.mu.Lock()
		delete(p.m, key)
		p.mu.Unlock()
	}, key)
	return v
}
