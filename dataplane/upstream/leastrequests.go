package upstream

import (
	"math/rand/v2"
	"sync/atomic"
)

// fullScanLimit is the pool size up to which least_requests compares every
// target; above it, it compares two random ones (power of two choices),
// which spreads load almost as well at constant cost.
const fullScanLimit = 4

// leastRequests picks the target with the fewest in-flight requests per unit
// of weight.
type leastRequests struct {
	c    candidates
	next atomic.Uint32 // rotating start, so ties do not all land on target 0
}

func (b *leastRequests) pick(_ []byte, tried []*Target) *Target {
	if len(b.c.targets) > fullScanLimit {
		if t := b.twoChoices(tried); t != nil {
			return t
		}
	}
	return b.scan(tried)
}

func (b *leastRequests) scan(tried []*Target) *Target {
	n := len(b.c.targets)
	start := int(b.next.Add(1) % uint32(n))
	var best *Target
	for i := range n {
		t := b.c.targets[(start+i)%n]
		if b.c.usable(t, tried) && (best == nil || lighter(t, best)) {
			best = t
		}
	}
	return best
}

// twoChoices samples two distinct usable targets and keeps the lighter. It
// gives up (nil) when sampling keeps hitting unusable targets; scan then
// finds whatever is left.
func (b *leastRequests) twoChoices(tried []*Target) *Target {
	a := b.sample(tried, nil)
	if a == nil {
		return nil
	}
	c := b.sample(tried, a)
	if c == nil || lighter(a, c) {
		return a
	}
	return c
}

const sampleTries = 4

func (b *leastRequests) sample(tried []*Target, not *Target) *Target {
	n := len(b.c.targets)
	for range sampleTries {
		t := b.c.targets[rand.IntN(n)]
		if t != not && b.c.usable(t, tried) {
			return t
		}
	}
	return nil
}
