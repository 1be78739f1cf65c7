package threatprotection

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testutil"
)

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestBanTableStaysWithinItsCapacity(t *testing.T) {
	clk := testutil.NewClock()
	const capacity = 4 * banShards
	tab := newBanTable(2, time.Minute, time.Hour, clk.Now, capacity, metricsFor(nil))
	banned := addr(1 << 20)
	tab.fail(banned)
	if !tab.fail(banned) {
		t.Fatal("two failures did not ban")
	}
	// A flood of addresses failing once each: the table never grows past
	// its capacity, and the ban in force is kept over half-counted records.
	for i := range 50 * capacity {
		tab.fail(addr(i))
	}
	total := 0
	for i := range tab.shards {
		n := len(tab.shards[i].clients)
		if n > tab.shardCap {
			t.Fatalf("shard %d holds %d entries, cap %d", i, n, tab.shardCap)
		}
		total += n
	}
	if total > capacity {
		t.Errorf("table holds %d entries, capacity %d", total, capacity)
	}
	if _, ok := tab.bannedFor(banned); !ok {
		t.Error("the ban was evicted by addresses that were not banned")
	}
	// Records that are over make room without evicting anything live.
	clk.Advance(2 * time.Hour)
	tab.fail(addr(1 << 21))
	if s := tab.shard(addr(1 << 21)); len(s.clients) != 1 {
		t.Errorf("after everything ran out the shard holds %d entries, want 1", len(s.clients))
	}
	if _, ok := tab.bannedFor(banned); ok || tab.activeBans() != 0 {
		t.Errorf("bans in force after they ran out: %d", tab.activeBans())
	}
}

func TestBanTableShardsSpreadAddresses(t *testing.T) {
	tab := newBanTable(1, time.Minute, time.Minute, time.Now, maxTrackedClients, metricsFor(nil))
	used := map[*banShard]bool{}
	for i := range 1024 {
		used[tab.shard(addr(i))] = true
		used[tab.shard(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))] = true
	}
	if len(used) < banShards*3/4 {
		t.Errorf("1024 addresses used %d of %d shards", len(used), banShards)
	}
}
