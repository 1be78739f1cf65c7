package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestCheckStatuses(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{200, true}, {204, true}, {302, true}, {404, false}, {500, false}, {503, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" || r.Host != "svc.internal" {
					w.WriteHeader(http.StatusTeapot)
					return
				}
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			ok, err := Check(context.Background(), noRedirects(), Probe{URL: srv.URL + "/healthz", Host: "svc.internal", Timeout: time.Second})
			if ok != tt.want {
				t.Fatalf("ok = %v (err %v), want %v", ok, err, tt.want)
			}
		})
	}
}

func TestCheckTransportFailures(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name string
		url  string
	}{
		{"timeout", slow.URL},
		{"refused", closedURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Check(context.Background(), noRedirects(), Probe{URL: tt.url, Timeout: 50 * time.Millisecond})
			if ok || err == nil {
				t.Fatalf("ok = %v, err = %v; want a failure with an error", ok, err)
			}
		})
	}
}

func TestRunReportsUntilCancelled(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan bool, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, noRedirects(), Probe{URL: srv.URL, Interval: 5 * time.Millisecond, Timeout: time.Second}, func(ok bool, err error) {
			results <- ok
		})
	}()
	for i := range 3 {
		select {
		case ok := <-results:
			if !ok {
				t.Fatalf("probe %d failed", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no probe result")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	after := hits.Load()
	if after < 3 {
		t.Fatalf("server saw %d probes, want at least 3", after)
	}
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name    string
		start   bool
		results []bool
		want    []bool // verdict after each result
	}{
		{"needs 3 failures to go down", true, []bool{false, false, false}, []bool{true, true, false}},
		{"a success resets the failure count", true, []bool{false, false, true, false, false, false}, []bool{true, true, true, true, true, false}},
		{"needs 2 successes to come up", false, []bool{true, false, true, true}, []bool{false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.start, 2, 3)
			prev := tt.start
			for i, r := range tt.results {
				got, changed := tr.Observe(r)
				if got != tt.want[i] || changed != (got != prev) {
					t.Fatalf("step %d: got %v changed %v, want %v", i, got, changed, tt.want[i])
				}
				prev = got
			}
		})
	}
}
