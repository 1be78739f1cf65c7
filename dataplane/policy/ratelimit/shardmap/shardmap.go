// Package shardmap is the concurrent map the rate limiters keep their keys
// in: byte-string keys to entries, split into shards by a hash of the key so
// that no lock is shared by every core.
//
// A lookup of an existing key takes its shard's read lock and allocates
// nothing: the key is hashed as bytes and the map is indexed with
// string(key), which the compiler does without a copy. Only a new key costs
// an allocation (its string and its entry). Entries are pointers, so callers
// update them in place (atomically, or under their own lock) after the
// shard's lock is released.
//
// Sweep removes entries under the shard's write lock. An entry a caller got
// just before it was removed is no longer reachable from the map, so callers
// whose entries carry state must let Sweep's retire function mark the entry
// dead and look the key up again when they find it so (see local.Limiter).
package shardmap

import (
	"hash/maphash"
	"sync"
)

// numShards is a power of two, comfortably above the core counts gateways
// run on, so that two busy keys rarely share a lock.
const numShards = 256

// Map maps byte-string keys to *E.
type Map[E any] struct {
	seed   maphash.Seed
	shards [numShards]shard[E]
}

type shard[E any] struct {
	mu sync.RWMutex
	m  map[string]*E
	// Padding to a cache line pair, so that neighbouring shards' locks do
	// not share one.
	_ [96]byte
}

// New returns an empty map.
func New[E any]() *Map[E] {
	m := &Map[E]{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = map[string]*E{}
	}
	return m
}

func (m *Map[E]) shard(key []byte) *shard[E] {
	return &m.shards[maphash.Bytes(m.seed, key)&(numShards-1)]
}

// Get returns the entry of key, creating a zero entry when there is none.
// init, when not nil, runs on a new entry before any other caller can see
// it, with the key as the map keeps it (so it costs no second copy).
func (m *Map[E]) Get(key []byte, init func(key string, e *E)) *E {
	s := m.shard(key)
	s.mu.RLock()
	e := s.m[string(key)]
	s.mu.RUnlock()
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[string(key)]; e == nil {
		k := string(key)
		e = new(E)
		if init != nil {
			init(k, e)
		}
		s.m[k] = e
	}
	return e
}

// Sweep removes every entry for which retire returns true and returns how
// many it removed. retire runs with the entry's shard write-locked, so no
// Get hands the entry out while it decides; one shard is locked at a time.
func (m *Map[E]) Sweep(retire func(e *E) bool) int {
	removed := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if retire(e) {
				delete(s.m, k)
				removed++
			}
		}
		s.mu.Unlock()
	}
	return removed
}

// Len returns the number of entries.
func (m *Map[E]) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
