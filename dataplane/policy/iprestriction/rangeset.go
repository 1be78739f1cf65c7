package iprestriction

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Set is a set of address ranges, answering "is this address in it" with a
// binary search. Ranges are kept sorted, with overlapping and adjacent ones
// merged, so at most one range can hold an address: the last one starting
// at or before it.
type Set struct {
	v4 []span[uint32]
	v6 []span[u128]
}

// span is an inclusive range of addresses.
type span[T any] struct{ first, last T }

// u128 is an IPv6 address as an integer, high half first, so that it
// compares like the address.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next is a+1, and false when a is the last address.
func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func toU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func toU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// NewSet compiles prefixes (masked; IPv4 ones unmapped) into a Set.
func NewSet(prefixes []netip.Prefix) *Set {
	s := &Set{}
	for _, p := range prefixes {
		a := p.Addr()
		if a.Is4() {
			host := uint32(uint64(1)<<(32-p.Bits()) - 1)
			first := toU32(a)
			s.v4 = append(s.v4, span[uint32]{first, first | host})
			continue
		}
		var host u128
		if h := 128 - p.Bits(); h >= 64 {
			host = u128{uint64(1)<<(h-64) - 1, ^uint64(0)}
		} else {
			host = u128{0, uint64(1)<<h - 1}
		}
		first := toU128(a)
		s.v6 = append(s.v6, span[u128]{first, u128{first.hi | host.hi, first.lo | host.lo}})
	}
	s.v4 = merge(s.v4, cmp.Compare[uint32], func(a uint32) (uint32, bool) { return a + 1, a != ^uint32(0) })
	s.v6 = merge(s.v6, u128.cmp, u128.next)
	return s
}

// merge sorts spans and joins those that overlap or touch.
func merge[T any](spans []span[T], compare func(a, b T) int, next func(T) (T, bool)) []span[T] {
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b span[T]) int { return compare(a.first, b.first) })
	out := spans[:1]
	for _, sp := range spans[1:] {
		cur := &out[len(out)-1]
		after, ok := next(cur.last)
		if !ok || compare(sp.first, after) <= 0 {
			if compare(sp.last, cur.last) > 0 {
				cur.last = sp.last
			}
			continue
		}
		out = append(out, sp)
	}
	return slices.Clip(out)
}

// Len is the number of ranges left after merging.
func (s *Set) Len() int { return len(s.v4) + len(s.v6) }

// Contains reports whether a (unmapped by the caller) is in the set. The
// zero Addr is in no set.
func (s *Set) Contains(a netip.Addr) bool {
	switch {
	case a.Is4():
		v := toU32(a)
		// i: the first span starting after v; the one before may hold it.
		lo, hi := 0, len(s.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s.v4[m].first > v {
				hi = m
			} else {
				lo = m + 1
			}
		}
		return lo > 0 && v <= s.v4[lo-1].last
	case a.Is6():
		v := toU128(a)
		lo, hi := 0, len(s.v6)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s.v6[m].first.cmp(v) > 0 {
				hi = m
			} else {
				lo = m + 1
			}
		}
		return lo > 0 && v.cmp(s.v6[lo-1].last) <= 0
	}
	return false
}
