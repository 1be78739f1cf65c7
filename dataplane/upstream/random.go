package upstream

import "math/rand/v2"

// weightedRandom draws two targets at random in proportion to their weights
// and keeps the one with fewer requests in flight (power of two choices), so
// a slow target sheds load without any shared counter being written on pick.
type weightedRandom struct {
	c     candidates
	cum   []int64 // cumulative weights, for drawing by weight
	total int64
}

func newWeightedRandom(c candidates) *weightedRandom {
	b := &weightedRandom{c: c, cum: make([]int64, len(c.targets))}
	for i, t := range c.targets {
		b.total += int64(t.Weight)
		b.cum[i] = b.total
	}
	return b
}

func (b *weightedRandom) pick(_ []byte, tried []*Target) *Target {
	a := b.draw(tried, nil)
	if a == nil {
		return b.drawAmongUsable(tried)
	}
	c := b.draw(tried, a)
	if c != nil && c.state.inFlight.Load() < a.state.inFlight.Load() {
		return c
	}
	return a
}

// draw returns a usable target other than not, drawn by weight, or nil after
// a few unlucky draws.
func (b *weightedRandom) draw(tried []*Target, not *Target) *Target {
	if b.total == 0 {
		return nil
	}
	for range sampleTries {
		t := b.c.targets[b.index(rand.Int64N(b.total))]
		if t != not && b.c.usable(t, tried) {
			return t
		}
	}
	return nil
}

// index finds the target whose cumulative-weight range holds r.
func (b *weightedRandom) index(r int64) int {
	lo, hi := 0, len(b.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if b.cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// drawAmongUsable is the slow path when most targets are unusable: weigh only
// the usable ones and draw among them (two passes, no allocation).
func (b *weightedRandom) drawAmongUsable(tried []*Target) *Target {
	var total int64
	for _, t := range b.c.targets {
		if b.c.usable(t, tried) {
			total += int64(t.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	r := rand.Int64N(total)
	for _, t := range b.c.targets {
		if !b.c.usable(t, tried) {
			continue
		}
		if r < int64(t.Weight) {
			return t
		}
		r -= int64(t.Weight)
	}
	return nil
}
