package upstream

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestWeightedDistribution(t *testing.T) {
	tests := []struct {
		name      string
		balancing string
		weights   []int
		picks     int
		hold      bool    // keep requests in flight (least_requests balances on them)
		keyed     bool    // pass a distinct key per pick
		tolerance float64 // allowed difference of each share, in share points
	}{
		{"round_robin exact", RoundRobin, []int{1, 2, 3}, 6000, false, false, 0},
		{"least_requests full scan", LeastRequests, []int{1, 2, 3}, 6000, true, false, 0.001},
		{"least_requests two choices", LeastRequests, []int{1, 2, 3, 1, 2, 3}, 12000, true, false, 0.01},
		{"random", Random, []int{1, 2, 3}, 60000, false, false, 0.01},
		{"consistent_hash over many keys", ConsistentHash, []int{1, 2, 3}, 60000, false, true, 0.03},
		{"consistent_hash without key", ConsistentHash, []int{1, 2, 3}, 6000, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			p := mustPool(t, r, svc("s", tt.balancing, tt.weights...))
			got := make([]int, len(tt.weights))
			var key []byte
			for i := range tt.picks {
				if tt.keyed {
					key = fmt.Appendf(key[:0], "client-%d", i)
				}
				tg := mustPick(t, p, key)
				got[tg.Index]++
				p.Start(tg)
				if !tt.hold {
					p.Done(tg, Outcome{Status: 200})
				}
			}
			total := 0
			for _, w := range tt.weights {
				total += w
			}
			for i, w := range tt.weights {
				want := float64(w) / float64(total)
				share := float64(got[i]) / float64(tt.picks)
				if math.Abs(share-want) > tt.tolerance+1e-9 {
					t.Errorf("target %d (weight %d): share %.4f, want %.4f±%.3f (counts %v)", i, w, share, want, tt.tolerance, got)
				}
			}
		})
	}
}

func TestSmoothRoundRobinOrder(t *testing.T) {
	r := newRegistry(t, RegistryOptions{})
	p := mustPool(t, r, svc("s", RoundRobin, 5, 1, 1))
	var b strings.Builder
	for range 14 {
		b.WriteByte("abc"[mustPick(t, p, nil).Index])
	}
	if got, want := b.String(), "aabacaa"+"aabacaa"; got != want {
		t.Fatalf("order %s, want %s (nginx smooth weighted round robin)", got, want)
	}
}

var allPolicies = []string{RoundRobin, LeastRequests, ConsistentHash, Random}

func TestPickExcludesTried(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			p := mustPool(t, r, svc("s", policy, 1, 1, 1))
			ts := p.Targets()
			for i := range 200 {
				key := fmt.Appendf(nil, "k%d", i)
				if got := mustPick(t, p, key, ts[0], ts[2]); got != ts[1] {
					t.Fatalf("picked %d with 0 and 2 tried, want 1", got.Index)
				}
				// Every target tried: reuse one rather than fail.
				if got := mustPick(t, p, key, ts...); got == nil {
					t.Fatal("nil target")
				}
			}
		})
	}
}

func TestPickSkipsUnhealthy(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			clk := newClock()
			r := newRegistry(t, RegistryOptions{Now: clk.Now})
			s := svc("s", policy, 1, 1, 1, 1, 1, 1)
			s.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 1}
			p := mustPool(t, r, s)
			ts := p.Targets()
			for _, i := range []int{0, 2, 3, 5} {
				eject(p, ts[i])
			}
			seen := map[int]int{}
			for i := range 1000 {
				seen[mustPick(t, p, fmt.Appendf(nil, "k%d", i)).Index]++
			}
			if len(seen) != 2 || seen[1] == 0 || seen[4] == 0 {
				t.Fatalf("picks %v, want only targets 1 and 4", seen)
			}
			eject(p, ts[1])
			eject(p, ts[4])
			if _, err := p.Pick([]byte("k"), nil); err != ErrNoHealthyTarget {
				t.Fatalf("all unhealthy: err = %v, want ErrNoHealthyTarget", err)
			}
		})
	}
}

func TestDrainedTargetNeverPicked(t *testing.T) {
	for _, policy := range allPolicies {
		t.Run(policy, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			p := mustPool(t, r, svc("s", policy, 1, 0, 1))
			for i := range 1000 {
				if got := mustPick(t, p, fmt.Appendf(nil, "k%d", i)); got.Index == 1 {
					t.Fatal("picked a target with weight 0")
				}
			}
		})
	}
}

func TestLeastRequestsPrefersIdle(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inFlight []int
		want     int
	}{
		{"idle one", []int{1, 1, 1}, []int{2, 1, 0}, 2},
		{"fewest", []int{1, 1, 1, 1}, []int{3, 1, 2, 4}, 1},
		{"per weight", []int{1, 4}, []int{1, 4}, 1}, // (1+1)/1 > (4+1)/4
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			p := mustPool(t, r, svc("s", LeastRequests, tt.weights...))
			for i, n := range tt.inFlight {
				for range n {
					p.Start(p.Targets()[i])
				}
			}
			for range 20 {
				if got := mustPick(t, p, nil); got.Index != tt.want {
					t.Fatalf("picked %d, want %d", got.Index, tt.want)
				}
			}
		})
	}
}

func TestLeastRequestsSpreadsTies(t *testing.T) {
	r := newRegistry(t, RegistryOptions{})
	p := mustPool(t, r, svc("s", LeastRequests, 1, 1, 1))
	seen := map[int]int{}
	for range 300 {
		tg := mustPick(t, p, nil)
		p.Start(tg)
		p.Done(tg, Outcome{Status: 200})
		seen[tg.Index]++
	}
	for i := range 3 {
		if seen[i] != 100 {
			t.Fatalf("idle equal targets picked %v, want 100 each", seen)
		}
	}
}

func TestPowerOfTwoChoicesAvoidsBusyTarget(t *testing.T) {
	for _, policy := range []string{LeastRequests, Random} {
		t.Run(policy, func(t *testing.T) {
			r := newRegistry(t, RegistryOptions{})
			p := mustPool(t, r, svc("s", policy, 1, 1, 1, 1, 1, 1, 1, 1))
			busy := p.Targets()[3]
			for range 50 {
				p.Start(busy)
			}
			n := 0
			for range 8000 {
				if mustPick(t, p, nil) == busy {
					n++
				}
			}
			// Picked only when both draws land on it: about 1/64, not 1/8.
			if n > 8000/30 {
				t.Fatalf("busy target picked %d times of 8000", n)
			}
		})
	}
}

func ringMapping(t *testing.T, p *Pool, keys int) []string {
	t.Helper()
	out := make([]string, keys)
	for i := range out {
		out[i] = mustPick(t, p, fmt.Appendf(nil, "user-%d", i)).URL.String()
	}
	return out
}

func TestConsistentHashStability(t *testing.T) {
	const keys = 20000
	base := svc("s", ConsistentHash, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	removed := base
	removed.Targets = append(append([]config.Target(nil), base.Targets[:3]...), base.Targets[4:]...)
	added := base
	added.Targets = append(append([]config.Target(nil), base.Targets...), config.Target{URL: "http://127.0.0.1:9100", Weight: intp(1)})
	reordered := base
	reordered.Targets = append([]config.Target(nil), base.Targets...)
	reordered.Targets[0], reordered.Targets[9] = reordered.Targets[9], reordered.Targets[0]

	r := newRegistry(t, RegistryOptions{})
	before := ringMapping(t, mustPool(t, r, base), keys)
	if again := ringMapping(t, mustPool(t, r, base), keys); !slicesEqual(again, before) {
		t.Fatal("same configuration maps keys differently")
	}
	tests := []struct {
		name    string
		svc     config.Service
		movedTo string // the only target keys may move to ("" = any)
		from    string // the only target keys may move from ("" = any)
		maxFrac float64
	}{
		{"remove one of 10", removed, "", base.Targets[3].URL, 0.15},
		{"add an 11th", added, "http://127.0.0.1:9100", "", 0.14},
		{"reorder", reordered, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := ringMapping(t, mustPool(t, r, tt.svc), keys)
			moved := 0
			for i := range after {
				if after[i] == before[i] {
					continue
				}
				moved++
				if tt.movedTo != "" && after[i] != tt.movedTo {
					t.Fatalf("key %d moved %s -> %s", i, before[i], after[i])
				}
				if tt.from != "" && before[i] != tt.from {
					t.Fatalf("key %d moved off %s, which stayed", i, before[i])
				}
			}
			if frac := float64(moved) / keys; frac > tt.maxFrac {
				t.Fatalf("%.3f of keys moved, want at most %.2f", frac, tt.maxFrac)
			}
			t.Logf("%.3f of keys moved", float64(moved)/keys)
		})
	}
}

func TestConsistentHashUnhealthyMovesOnlyItsKeys(t *testing.T) {
	const keys = 5000
	r := newRegistry(t, RegistryOptions{})
	s := svc("s", ConsistentHash, 1, 1, 1, 1, 1)
	s.HealthCheck.Passive = &config.PassiveHealthCheck{UnhealthyThreshold: 1}
	p := mustPool(t, r, s)
	before := ringMapping(t, p, keys)
	down := p.Targets()[2]
	eject(p, down)
	after := ringMapping(t, p, keys)
	spread := map[string]bool{}
	for i := range after {
		switch {
		case before[i] == down.URL.String():
			if after[i] == before[i] {
				t.Fatalf("key %d still on the unhealthy target", i)
			}
			spread[after[i]] = true
		case after[i] != before[i]:
			t.Fatalf("key %d on a healthy target moved %s -> %s", i, before[i], after[i])
		}
	}
	if len(spread) < 3 {
		t.Fatalf("unhealthy target's keys went to %d targets, want them spread", len(spread))
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
