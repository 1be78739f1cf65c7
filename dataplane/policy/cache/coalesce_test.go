package cache_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/dataplane/policy/cache"
	"github.com/tollgate/tollgate/internal/testutil"
)

// heldBackend holds every request until the test releases it, then
// answers "answer N" with the headers given.
func heldBackend(t *testing.T, header ...string) (*backend, chan struct{}) {
	release := make(chan struct{})
	stop := make(chan struct{})
	var b *backend
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n := b.calls.Load()
		select {
		case <-release:
		case <-stop:
			return
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		body := "answer " + strconv.FormatInt(n, 10)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	t.Cleanup(func() { close(stop) })
	return b, release
}

// sendAll sends n GETs of url at once; their answers arrive on the
// channel.
func sendAll(url string, n int) <-chan answer {
	out := make(chan answer, n)
	for range n {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				out <- answer{status: -1, body: err.Error()}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- answer{resp.StatusCode, resp.Header, string(b)}
		}()
	}
	return out
}

func TestConcurrentMissesMakeOneUpstreamCall(t *testing.T) {
	b, release := heldBackend(t)
	g := start(t, gatewayConfig(b.URL, "{}"), nil)

	const n = 8
	answers := sendAll(g.URL+"/hot", n)
	// One request reached the backend; the others wait for it.
	testutil.Eventually(t, 5*time.Second, "followers waiting", func() bool {
		return b.calls.Load() == 1 && cache.Waiting("api") == n-1
	})
	close(release)
	hits := 0
	for range n {
		a := <-answers
		if a.status != 200 || a.body != "answer 1" {
			t.Errorf("answer %d %q, want the leader's", a.status, a.body)
		}
		if a.header.Get("X-Cache") == "HIT" {
			hits++
		}
	}
	expectCalls(t, b, 1)
	if hits != n-1 {
		t.Errorf("%d hits, want %d (all but the leader)", hits, n-1)
	}
}

// When the leader's answer may not be stored, the waiting requests go
// upstream themselves.
func TestWaitersGoUpstreamWhenTheAnswerIsNotStored(t *testing.T) {
	b, release := heldBackend(t, "Cache-Control", "no-store")
	g := start(t, gatewayConfig(b.URL, "{}"), nil)

	const n = 4
	answers := sendAll(g.URL+"/private", n)
	testutil.Eventually(t, 5*time.Second, "followers waiting", func() bool {
		return cache.Waiting("api") == n-1
	})
	close(release) // answers the leader, and then each follower
	for range n {
		if a := <-answers; a.status != 200 || a.header.Get("X-Cache") != "MISS" {
			t.Errorf("answer %d X-Cache %q, want 200 MISS", a.status, a.header.Get("X-Cache"))
		}
	}
	expectCalls(t, b, n)
}

// Waiting is bounded by lock_timeout: past it, requests go upstream.
func TestWaitIsBounded(t *testing.T) {
	b, release := heldBackend(t)
	g := start(t, gatewayConfig(b.URL, "{lock_timeout: 50ms}"), nil)

	answers := sendAll(g.URL+"/slow", 2)
	testutil.Eventually(t, 5*time.Second, "the follower gave up waiting and went upstream", func() bool {
		return b.calls.Load() == 2
	})
	close(release)
	for range 2 {
		if a := <-answers; a.status != 200 {
			t.Errorf("answer %d %q", a.status, a.body)
		}
	}
}
