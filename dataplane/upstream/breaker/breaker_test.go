package breaker

import (
	"github.com/tollgate/tollgate/internal/testutil"
	"sync"
	"testing"
	"time"
)

func newClock() *testutil.Clock { return testutil.NewClock() }

var testSettings = Settings{ErrorRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenFor: 30 * time.Second, Probes: 2}

func record(b *Breaker, ok, failed int) {
	for range ok {
		b.Record(false)
	}
	for range failed {
		b.Record(true)
	}
}

func TestBreakerOpensOnRatio(t *testing.T) {
	tests := []struct {
		name       string
		ok, failed int
		want       State
	}{
		{"below min requests, all failed", 0, 9, Closed},
		{"at min requests, ratio reached", 5, 5, Open},
		{"ratio just below", 6, 4, Closed},
		{"many calls, ratio reached", 50, 50, Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(testSettings, newClock().Now)
			record(b, tt.ok, tt.failed)
			if got := b.State(); got != tt.want {
				t.Fatalf("state = %v, want %v", got, tt.want)
			}
			if allowed := b.Allow(); allowed != (tt.want == Closed) {
				t.Fatalf("Allow = %v in state %v", allowed, tt.want)
			}
		})
	}
}

func TestBreakerWindowSlides(t *testing.T) {
	clk := newClock()
	b := New(testSettings, clk.Now)
	record(b, 0, 9)
	clk.Advance(11 * time.Second) // the 9 failures leave the window
	record(b, 9, 1)
	if got := b.State(); got != Closed {
		t.Fatalf("old failures still counted: state = %v", got)
	}
	clk.Advance(2 * time.Second)
	record(b, 0, 9) // 9 ok and 10 failed within the window
	if got := b.State(); got != Open {
		t.Fatalf("state = %v, want open", got)
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	tests := []struct {
		name       string
		probeFails bool
		want       State
	}{
		{"successful probe closes", false, Closed},
		{"failed probe reopens", true, Open},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := New(testSettings, clk.Now)
			record(b, 0, 10)
			if b.Allow() {
				t.Fatal("open breaker allowed a call")
			}
			clk.Advance(29 * time.Second)
			if b.Allow() {
				t.Fatal("allowed a call before open_for passed")
			}
			clk.Advance(time.Second)
			// Allow has side effects: each call takes a probe slot.
			first, second := b.Allow(), b.Allow()
			if !first || !second {
				t.Fatal("half-open breaker refused its probes")
			}
			if b.Allow() {
				t.Fatal("half-open breaker allowed more than Probes calls")
			}
			if got := b.State(); got != HalfOpen {
				t.Fatalf("state = %v, want half_open", got)
			}
			b.Record(tt.probeFails)
			if got := b.State(); got != tt.want {
				t.Fatalf("state = %v, want %v", got, tt.want)
			}
			if got := b.Allow(); got != (tt.want == Closed) {
				t.Fatalf("Allow = %v after probe", got)
			}
			if tt.want == Closed {
				// The window starts afresh: the failures that opened it are gone.
				record(b, 0, 9)
				if got := b.State(); got != Closed {
					t.Fatalf("state = %v after 9 failures in a fresh window", got)
				}
			}
		})
	}
}

func TestBreakerRearmsLostProbes(t *testing.T) {
	clk := newClock()
	b := New(testSettings, clk.Now)
	record(b, 0, 10)
	clk.Advance(30 * time.Second)
	first, second, third := b.Allow(), b.Allow(), b.Allow()
	if !first || !second || third {
		t.Fatal("expected exactly two probes")
	}
	clk.Advance(30 * time.Second) // neither probe ever reported
	if !b.Allow() {
		t.Fatal("probe slots not handed out again after open_for")
	}
}

func TestBreakerConcurrentUse(t *testing.T) {
	clk := newClock()
	b := New(testSettings, clk.Now)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if b.Allow() {
					b.Record((i+g)%3 == 0)
				}
				if i%500 == 0 {
					clk.Advance(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if s := b.State(); s < Closed || s > HalfOpen {
		t.Fatalf("invalid state %v", s)
	}
}
