// Package health sends active health probes and turns their results into a
// healthy/unhealthy verdict with thresholds.
//
// Probing and thresholds are separate: the caller owns the verdict because
// passive checks on real traffic change the same target's state.
package health

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Probe describes one periodic check: GET URL every Interval, giving up after
// Timeout. A 2xx or 3xx answer is a success; anything else, including a
// transport error, is a failure.
type Probe struct {
	URL      string
	Host     string // Host header; empty means the URL's host
	Interval time.Duration
	Timeout  time.Duration
}

// Run probes until ctx is done, reporting every result. The first probe is
// sent at once so a dead target is noticed one interval sooner. The client
// should not follow redirects (a 3xx is already a success).
func Run(ctx context.Context, client *http.Client, p Probe, report func(ok bool, err error)) {
	tick := time.NewTicker(p.Interval)
	defer tick.Stop()
	for {
		ok, err := Check(ctx, client, p)
		if ctx.Err() != nil {
			return
		}
		report(ok, err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Check sends one probe.
func Check(ctx context.Context, client *http.Client, p Probe) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return false, err
	}
	if p.Host != "" {
		req.Host = p.Host
	}
	req.Header.Set("User-Agent", "tollgate-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	// Drain a little so the connection can be reused by the next probe.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400, nil
}

// Tracker applies thresholds to a stream of results: HealthyThreshold
// consecutive successes make an unhealthy target healthy, UnhealthyThreshold
// consecutive failures make a healthy one unhealthy. Not safe for concurrent
// use; each checker owns one.
type Tracker struct {
	healthy            bool
	healthyThreshold   int
	unhealthyThreshold int
	successes          int
	failures           int
}

// NewTracker starts in the given state. Thresholds below 1 count as 1.
func NewTracker(healthy bool, healthyThreshold, unhealthyThreshold int) *Tracker {
	return &Tracker{
		healthy:            healthy,
		healthyThreshold:   max(1, healthyThreshold),
		unhealthyThreshold: max(1, unhealthyThreshold),
	}
}

// Observe records one result and returns the verdict and whether it changed.
func (t *Tracker) Observe(ok bool) (healthy, changed bool) {
	if ok {
		t.successes++
		t.failures = 0
		if !t.healthy && t.successes >= t.healthyThreshold {
			t.healthy = true
			return true, true
		}
		return t.healthy, false
	}
	t.failures++
	t.successes = 0
	if t.healthy && t.failures >= t.unhealthyThreshold {
		t.healthy = false
		return false, true
	}
	return t.healthy, false
}

// Successes is the number of consecutive successes so far.
func (t *Tracker) Successes() int { return t.successes }
