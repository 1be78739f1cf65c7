package gcra

import (
	"testing"
	"time"
)

func TestNewRateKeepsWholeMicroseconds(t *testing.T) {
	r := NewRate(7, time.Minute) // 8.571428571s per request
	if r.Interval%int64(time.Microsecond) != 0 || r.Interval != 8571428*int64(time.Microsecond) {
		t.Fatalf("interval %d, want 8571428µs", r.Interval)
	}
	if r.Capacity != 7*r.Interval {
		t.Fatalf("capacity %d, want %d", r.Capacity, 7*r.Interval)
	}
}

func TestAdmitBurstThenOnePerInterval(t *testing.T) {
	r := NewRate(3, 3*time.Second) // one a second, three at once
	var tat, now int64
	for i := int64(0); i < 3; i++ {
		var d Decision
		tat, d = r.Admit(tat, now)
		if !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v, want admitted with %d remaining", i, d, 2-i)
		}
		if d.Reset != time.Duration(i+1)*time.Second {
			t.Fatalf("request %d: reset %s, want %ds", i, d.Reset, i+1)
		}
	}
	tat2, d := r.Admit(tat, now+int64(400*time.Millisecond))
	if d.Allowed || d.RetryAfter != 600*time.Millisecond || d.Reset != d.RetryAfter || tat2 != tat {
		t.Fatalf("4th request: %+v (tat %d→%d), want refused, retry after 600ms, TAT kept", d, tat, tat2)
	}
	if _, d := r.Admit(tat, now+int64(time.Second)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("a second later: %+v, want admitted with none remaining", d)
	}
}

func TestFree(t *testing.T) {
	r := NewRate(10, 10*time.Second)
	if f := r.Free(0, 5); f != 10 {
		t.Fatalf("fresh key: %d free, want 10", f)
	}
	if f := r.Free(int64(4*time.Second), 0); f != 6 {
		t.Fatalf("4 spent: %d free, want 6", f)
	}
	if f := r.Free(int64(12*time.Second), 0); f != 0 {
		t.Fatalf("overspent: %d free, want 0", f)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, -time.Second: 0, 1: 1, time.Second: 1, time.Second + 1: 2, 90 * time.Second: 90} {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestNewRateCapsAtAMillionPerSecond(t *testing.T) {
	r := NewRate(100_000_000, time.Second)
	if r.Interval != int64(time.Microsecond) || r.Capacity != 100_000_000*int64(time.Microsecond) {
		t.Fatalf("rate %+v, want 1µs per request and a burst of the whole limit", r)
	}
}
