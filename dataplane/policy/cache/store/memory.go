package store

import (
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
)

// Memory is an in-memory store bounded in bytes: when a new entry would
// pass the bound, entries not used lately go. It is sharded by resource,
// each shard with its own lock, list and share of the bound, so hits on
// different resources seldom wait for each other.
//
// Recency is kept the CLOCK way, so that a hit only takes a shard's read
// lock: a hit marks its entry used (a flag, written only when not yet
// set), and eviction walks the list from its oldest end, giving a used
// entry a second chance (unmarked, to the front) and dropping the first
// unused one. Entries used since the last walk are kept, as an LRU would.
//
// Expired entries are dropped when a lookup finds them, or when eviction
// reaches them; nothing scans in the background.
type Memory struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
}

type shard struct {
	mu        sync.RWMutex
	resources map[string]*resource
	lru       node // sentinel: lru.next is the most recently used
	bytes     int64
	entries   int
	limit     int64
	_         [64]byte // one shard per cache line or more
}

// resource is what a shard knows of one resource: the request header names
// its responses vary on and its stored variants.
type resource struct {
	names    []string
	variants map[string]*node
}

type node struct {
	entry      *Entry
	res        *resource
	prev, next *node
	used       atomic.Bool // hit since eviction last passed it
}

// maxShards bounds the sharding; minEntriesPerShard keeps each shard's
// share of the bound at a few of the largest entries, so that a large
// entry does not find its shard too small for it.
const (
	maxShards          = 16
	minEntriesPerShard = 4
)

// NewMemory returns a store holding at most limit bytes (as Entry.Size
// counts them) of entries of at most maxEntry bytes each.
func NewMemory(limit, maxEntry int64) *Memory {
	n := int64(1)
	if maxEntry > 0 {
		n = min(max(limit/(minEntriesPerShard*maxEntry), 1), maxShards)
	}
	n = 1 << (bits.Len64(uint64(n)) - 1) // a power of two, not above
	m := &Memory{shards: make([]shard, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
	for i := range m.shards {
		s := &m.shards[i]
		s.resources = map[string]*resource{}
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.limit = limit / n
	}
	return m
}

func (m *Memory) shard(resource []byte) *shard {
	return &m.shards[maphash.Bytes(m.seed, resource)&m.mask]
}

func (m *Memory) shardOf(resource string) *shard {
	return &m.shards[maphash.String(m.seed, resource)&m.mask]
}

// Names returns the header names the resource's stored responses vary on,
// and whether the store knows the resource. The slice is shared: never
// change it.
func (m *Memory) Names(resource []byte) ([]string, bool) {
	s := m.shard(resource)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.resources[string(resource)]; r != nil {
		return r.names, true
	}
	return nil, false
}

// Get returns the fresh entry of a resource's variant, or nil.
func (m *Memory) Get(resource, variant []byte, now int64) *Entry {
	s := m.shard(resource)
	s.mu.RLock()
	n := s.find(resource, variant)
	if n == nil {
		s.mu.RUnlock()
		return nil
	}
	e := n.entry
	if e.Fresh(now) {
		if !n.used.Load() {
			n.used.Store(true)
		}
		s.mu.RUnlock()
		return e
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if n := s.find(resource, variant); n != nil && n.entry == e {
		s.remove(n)
	}
	s.mu.Unlock()
	return nil
}

// find returns the node of a variant; the caller holds the lock.
func (s *shard) find(resource, variant []byte) *node {
	r := s.resources[string(resource)]
	if r == nil {
		return nil
	}
	return r.variants[string(variant)]
}

// Put stores e, whose resource varies on names (sorted), replacing the
// variant stored before. A new list of names makes the resource's other
// variants unreachable, so they go. An entry larger than a shard's share
// of the bound is not stored, and Put reports false.
func (m *Memory) Put(e *Entry, names []string) bool {
	s := m.shardOf(e.Resource)
	if e.Size() > s.limit {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resources[e.Resource]
	switch {
	case r == nil:
		r = &resource{names: names, variants: map[string]*node{}}
		s.resources[e.Resource] = r
	case !slices.Equal(r.names, names):
		for _, n := range r.variants {
			s.unlink(n)
			s.account(n, -1)
		}
		clear(r.variants)
		r.names = names
	}
	if old := r.variants[e.Variant]; old != nil {
		s.unlink(old)
		s.account(old, -1)
	}
	n := &node{entry: e, res: r}
	r.variants[e.Variant] = n
	s.pushFront(n)
	s.account(n, 1)
	s.evict(n)
	return true
}

// evict drops entries from the oldest end until the shard is within its
// bound, giving those used since the last pass a second chance; it never
// drops keep, the entry just stored (no larger than the bound).
func (s *shard) evict(keep *node) {
	for s.bytes > s.limit {
		oldest := s.lru.prev
		if oldest == keep || oldest.used.Load() {
			oldest.used.Store(false)
			s.unlink(oldest)
			s.pushFront(oldest)
			continue
		}
		s.remove(oldest)
	}
}

// Purge drops the entries of the resources in scope and returns how many
// it dropped.
func (m *Memory) Purge(scope Scope) int {
	dropped := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for key, r := range s.resources {
			if !scope.matches(key) {
				continue
			}
			for _, n := range r.variants {
				s.unlink(n)
				s.account(n, -1)
				dropped++
			}
			delete(s.resources, key)
		}
		s.mu.Unlock()
	}
	return dropped
}

// Len returns the number of entries and the bytes they count for.
func (m *Memory) Len() (entries int, bytes int64) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		entries += s.entries
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}

// remove drops a node from its resource and the list, and the resource
// once it has no variant left.
func (s *shard) remove(n *node) {
	s.unlink(n)
	s.account(n, -1)
	r := n.res
	delete(r.variants, n.entry.Variant)
	if len(r.variants) == 0 {
		delete(s.resources, n.entry.Resource)
	}
}

func (s *shard) account(n *node, sign int) {
	s.bytes += int64(sign) * n.entry.Size()
	s.entries += sign
}

func (s *shard) unlink(n *node) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next = nil, nil
}

func (s *shard) pushFront(n *node) {
	n.prev = &s.lru
	n.next = s.lru.next
	s.lru.next.prev = n
	s.lru.next = n
}
