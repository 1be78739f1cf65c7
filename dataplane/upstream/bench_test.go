package upstream

import (
	"fmt"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func benchPool(b *testing.B, policy string, n int) *Pool {
	weights := make([]int, n)
	for i := range weights {
		weights[i] = 1 + i%3
	}
	r := NewRegistry(RegistryOptions{})
	b.Cleanup(r.Close)
	s := svc("s", policy, weights...)
	s.HealthCheck.Passive = &config.PassiveHealthCheck{}
	s.CircuitBreaker = &config.CircuitBreaker{ErrorRatio: 0.5, MinRequests: 20}
	p, err := r.NewPool(s)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPick measures Pick alone and a full Pick/Start/Done cycle, serially
// and from every core at once.
func BenchmarkPick(b *testing.B) {
	key := []byte("203.0.113.7")
	for _, policy := range allPolicies {
		for _, n := range []int{3, 16} {
			name := fmt.Sprintf("%s/targets=%d", policy, n)
			b.Run(name+"/pick", func(b *testing.B) {
				p := benchPool(b, policy, n)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Pick(key, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/cycle-parallel", func(b *testing.B) {
				p := benchPool(b, policy, n)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						t, err := p.Pick(key, nil)
						if err != nil {
							b.Error(err)
							return
						}
						p.Start(t)
						p.Done(t, Outcome{Status: 200})
					}
				})
			})
		}
	}
}

func BenchmarkPickRetry(b *testing.B) {
	p := benchPool(b, RoundRobin, 3)
	tried := []*Target{p.Targets()[0]}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Pick(nil, tried); err != nil {
			b.Fatal(err)
		}
	}
}
