package threatprotection

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// banShards splits a ban table so that requests on different cores rarely
// wait for the same lock.
const banShards = 64

// A ban table remembers at most maxTrackedClients addresses (with recent
// failures or a ban) at once, and at most failureSlots failure times in all
// (8 MiB): a high ban_after_auth_failures means fewer addresses.
const (
	maxTrackedClients = 1 << 16
	failureSlots      = 1 << 20
)

// tableCapacity is how many addresses a table banning after `after`
// failures remembers.
func tableCapacity(after int) int { return min(maxTrackedClients, failureSlots/after) }

// banTable counts authentication failures per client address and bans an
// address that fails too often. Addresses that never fail are never stored;
// entries whose failures and ban are over are dropped when a shard needs
// room, and a full shard evicts an unbanned entry first.
type banTable struct {
	now      func() time.Time
	after    int   // failures within window that ban
	window   int64 // nanoseconds
	banFor   int64 // nanoseconds
	shardCap int
	metrics  *banMetrics
	// bansEnd is when the last ban given ends (Unix nanoseconds; 0: none
	// ever): before the first ban and once all are over, which is nearly
	// always, a request is checked without taking any lock.
	bansEnd atomic.Int64
	shards  [banShards]banShard
}

type banShard struct {
	mu      sync.Mutex
	clients map[netip.Addr]*client
	_       [48]byte // a cache line of its own
}

// client is one address's record.
type client struct {
	// failures are the times (Unix nanoseconds) of the last `after`
	// failures, a ring whose oldest entry is at next; 0 is an empty slot.
	failures    []int64
	next        int
	bannedUntil int64 // 0: not banned
}

func newBanTable(after int, window, banFor time.Duration, now func() time.Time, capacity int, m *banMetrics) *banTable {
	t := &banTable{
		now: now, after: after, window: int64(window), banFor: int64(banFor),
		shardCap: max(capacity/banShards, 1), metrics: m,
	}
	for i := range t.shards {
		t.shards[i].clients = map[netip.Addr]*client{}
	}
	m.track(t)
	return t
}

// Close stops counting the table in the banned clients gauge, when a
// configuration no longer uses it.
func (t *banTable) Close() error {
	t.metrics.untrack(t)
	return nil
}

func (t *banTable) shard(a netip.Addr) *banShard {
	b := a.As16()
	h := binary.BigEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.BigEndian.Uint64(b[8:])*0xc2b2ae3d27d4eb4f
	return &t.shards[h>>58]
}

// bannedFor reports whether a is banned, and for how much longer.
func (t *banTable) bannedFor(a netip.Addr) (time.Duration, bool) {
	end := t.bansEnd.Load()
	if end == 0 {
		return 0, false
	}
	now := t.now().UnixNano()
	if now >= end {
		return 0, false
	}
	s := t.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[a]
	if c == nil {
		return 0, false
	}
	if left := c.bannedUntil - now; left > 0 {
		return time.Duration(left), true
	}
	return 0, false
}

// fail records an authentication failure of a, and bans it when it is the
// after-th within the window. It reports whether a is banned now.
func (t *banTable) fail(a netip.Addr) bool {
	now := t.now().UnixNano()
	s := t.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[a]
	if c == nil {
		if len(s.clients) >= t.shardCap {
			t.makeRoom(s, now)
		}
		c = &client{failures: make([]int64, t.after)}
		s.clients[a] = c
	}
	if c.bannedUntil > now {
		return true
	}
	if c.bannedUntil != 0 { // a ban that ran out: start afresh
		c.bannedUntil = 0
		clear(c.failures)
	}
	c.failures[c.next] = now
	c.next = (c.next + 1) % len(c.failures)
	// The slot at next now holds the oldest of the last `after` failures.
	if oldest := c.failures[c.next]; oldest == 0 || now-oldest > t.window {
		return false
	}
	c.bannedUntil = now + t.banFor
	clear(c.failures)
	for end := t.bansEnd.Load(); end < c.bannedUntil && !t.bansEnd.CompareAndSwap(end, c.bannedUntil); {
		end = t.bansEnd.Load()
	}
	t.metrics.bans.Inc()
	return true
}

// makeRoom drops the entries of s that are over (no ban in force, no failure
// within the window); if none is, it evicts one entry, an unbanned one when
// there is one, else the one whose ban ends first. An attacker who fails
// from many addresses thus pushes out mostly its own half-counted ones.
func (t *banTable) makeRoom(s *banShard, now int64) {
	var unbanned, soonest netip.Addr
	var soonestEnd int64
	for a, c := range s.clients {
		switch {
		case c.bannedUntil > now:
			if !soonest.IsValid() || c.bannedUntil < soonestEnd {
				soonest, soonestEnd = a, c.bannedUntil
			}
		case c.bannedUntil != 0 || now-c.newestFailure() > t.window:
			delete(s.clients, a)
		default:
			unbanned = a
		}
	}
	if len(s.clients) < t.shardCap {
		return
	}
	victim := unbanned
	if !victim.IsValid() {
		victim = soonest
	}
	delete(s.clients, victim)
}

func (c *client) newestFailure() int64 {
	return c.failures[(c.next+len(c.failures)-1)%len(c.failures)]
}

// activeBans counts the addresses banned now.
func (t *banTable) activeBans() int {
	now := t.now().UnixNano()
	if now >= t.bansEnd.Load() {
		return 0
	}
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, c := range s.clients {
			if c.bannedUntil > now {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
