package loadshed

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// holders are the exchanges holding a slot of a limiter, with the stamp of
// when they took it.
//
// The engine tells every Finisher of a route when an exchange ends, also
// one that a policy refused, this one or one that ran before it. Only an
// exchange that took a slot may give one back, so the limiter remembers
// which did.
//
// The set is sharded by the exchange's address, with about one shard per
// four slots, so the requests of different cores seldom meet on a lock
// and a shard holds a handful of entries: a short slice scanned whole is
// cheaper than a map (which also reseeds its hash each time it empties).
// Slices keep their room once grown, so taking and giving back a slot does
// not allocate.
type holders struct {
	shards []holderShard
	shift  uint // 64 - log2(len(shards))
}

type holderShard struct {
	mu   sync.Mutex
	held []holder // in no order
	_    [32]byte // one shard per cache line
}

type holder struct {
	x     *policy.Exchange
	stamp int64
}

const (
	minHolderShards = 64
	maxHolderShards = 4096
	slotsPerShard   = 4
)

func (h *holders) init(slots int64) {
	n := min(max(slots/slotsPerShard, minHolderShards), maxHolderShards)
	n = 1 << bits.Len64(uint64(n-1)) // a power of two
	h.shards = make([]holderShard, n)
	h.shift = uint(64 - bits.TrailingZeros64(uint64(n)))
}

func (h *holders) shard(x *policy.Exchange) *holderShard {
	// Fibonacci hashing: exchanges sit at addresses a few hundred bytes
	// apart, whose middle bits vary; the multiply spreads them to the top.
	i := (uint64(uintptr(unsafe.Pointer(x))) * 0x9E3779B97F4A7C15) >> h.shift
	return &h.shards[i]
}

// add records that x holds a slot since stamp.
func (h *holders) add(x *policy.Exchange, stamp int64) {
	s := h.shard(x)
	s.mu.Lock()
	s.held = append(s.held, holder{x, stamp})
	s.mu.Unlock()
}

// remove forgets x and returns its stamp; ok is false when x held no slot.
func (h *holders) remove(x *policy.Exchange) (stamp int64, ok bool) {
	s := h.shard(x)
	s.mu.Lock()
	for i := range s.held {
		if s.held[i].x == x {
			stamp, ok = s.held[i].stamp, true
			last := len(s.held) - 1
			s.held[i] = s.held[last]
			s.held[last] = holder{}
			s.held = s.held[:last]
			break
		}
	}
	s.mu.Unlock()
	return stamp, ok
}
