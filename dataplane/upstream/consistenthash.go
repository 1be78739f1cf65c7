package upstream

import (
	"slices"
	"strconv"
)

// Ring size: pointsPerWeight points per unit of weight, fewer when the total
// weight is large, so a ring stays under maxRingPoints unless weights alone
// exceed it.
const (
	pointsPerWeight = 160
	maxRingPoints   = 1 << 16
	// ringProbeSteps is how far the walk past unusable points goes before
	// checking whether any target is usable at all.
	ringProbeSteps = 64
)

// ringHash is a consistent-hash ring (ketama style). A ring was chosen over
// Maglev or jump hash because weights map directly to point counts, a
// target's points depend only on its own URL and weight (adding or removing
// one target moves only the keys on its arcs, ~1/N), and "unhealthy: use the
// next point" spreads a failed target's keys over its neighbours without
// moving anyone else's. Hashes are FNV-1a with a murmur3 finaliser:
// deterministic, so every gateway node maps a key to the same target.
type ringHash struct {
	c        candidates
	points   []ringPoint // sorted by hash
	fallback *smoothRoundRobin
}

type ringPoint struct {
	hash   uint64
	target int32
}

func newRingHash(c candidates) *ringHash {
	var total int64
	for _, t := range c.targets {
		total += int64(t.Weight)
	}
	per := int64(pointsPerWeight)
	if total > 0 && total*per > maxRingPoints {
		per = max(1, maxRingPoints/total)
	}
	b := &ringHash{c: c, fallback: newSmoothRoundRobin(c)}
	buf := make([]byte, 0, 256)
	for i, t := range c.targets {
		for j := range int64(t.Weight) * per {
			buf = append(buf[:0], t.URL.String()...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, j, 10)
			b.points = append(b.points, ringPoint{hash: hashKey(buf), target: int32(i)})
		}
	}
	slices.SortFunc(b.points, func(x, y ringPoint) int {
		switch {
		case x.hash < y.hash:
			return -1
		case x.hash > y.hash:
			return 1
		}
		return int(x.target - y.target)
	})
	return b
}

func (b *ringHash) pick(key []byte, tried []*Target) *Target {
	if len(key) == 0 || len(b.points) == 0 {
		return b.fallback.pick(nil, tried)
	}
	h := hashKey(key)
	n := len(b.points)
	i, _ := slices.BinarySearchFunc(b.points, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	for step := range n {
		if step == ringProbeSteps && !b.anyUsable(tried) {
			return nil
		}
		t := b.c.targets[b.points[(i+step)%n].target]
		if b.c.usable(t, tried) {
			return t
		}
	}
	return nil
}

func (b *ringHash) anyUsable(tried []*Target) bool {
	for _, t := range b.c.targets {
		if b.c.usable(t, tried) {
			return true
		}
	}
	return false
}

// hashKey is FNV-1a 64 followed by murmur3's fmix64, which spreads the
// clustered outputs FNV gives for similar keys ("t#1", "t#2") over the ring.
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
