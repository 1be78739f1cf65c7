package upstream

import (
	"fmt"
	"time"
)

// balancer chooses among a pool's targets. pick returns nil when no target
// is usable; it must not allocate.
type balancer interface {
	pick(key []byte, tried []*Target) *Target
}

// Balancing policy names as written in the configuration.
const (
	RoundRobin     = "round_robin"
	LeastRequests  = "least_requests"
	ConsistentHash = "consistent_hash"
	Random         = "random"
)

func newBalancer(policy string, targets []*Target, now func() time.Time) (balancer, error) {
	c := candidates{targets: targets, now: now}
	switch policy {
	case "", RoundRobin:
		return newSmoothRoundRobin(c), nil
	case LeastRequests:
		return &leastRequests{c: c}, nil
	case ConsistentHash:
		return newRingHash(c), nil
	case Random:
		return newWeightedRandom(c), nil
	}
	return nil, fmt.Errorf("unknown balancing %q (use %s, %s, %s or %s)", policy, RoundRobin, LeastRequests, ConsistentHash, Random)
}

// candidates is what every balancer needs: the targets and a way to tell
// whether one may take this attempt.
type candidates struct {
	targets []*Target
	now     func() time.Time
}

// usable reports whether t may be picked: not drained, healthy, not tried.
func (c *candidates) usable(t *Target, tried []*Target) bool {
	if t.Weight == 0 {
		return false
	}
	s := t.state
	if !s.activeUp.Load() {
		return false
	}
	if e := s.ejectedUntil.Load(); e != 0 && c.now().UnixNano() < e {
		return false
	}
	for _, x := range tried {
		if x == t {
			return false
		}
	}
	return true
}

// lighter reports whether a carries less load than b relative to their
// weights: (inflight+1)/weight, so that idle targets still prefer the heavier
// weight. Cross-multiplied to stay in integers.
func lighter(a, b *Target) bool {
	return (a.state.inFlight.Load()+1)*int64(b.Weight) < (b.state.inFlight.Load()+1)*int64(a.Weight)
}
