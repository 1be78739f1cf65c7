package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy/cache"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// backend is an upstream that counts the requests reaching it and answers
// with handle.
type backend struct {
	*httptest.Server
	calls atomic.Int64
}

func newBackend(t *testing.T, handle http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		handle(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// numbered answers "answer N" (N counting the backend's calls) with the
// headers given, and a Content-Length.
func numbered(b **backend, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Add(header[i], header[i+1])
		}
		body := fmt.Sprintf("answer %d", (*b).calls.Load())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}
}

// countingBackend is a backend answering with numbered.
func countingBackend(t *testing.T, header ...string) *backend {
	var b *backend
	b = newBackend(t, numbered(&b, header...))
	return b
}

const adminTokens = `admin:
  tokens:
    - {name: ops, token: ops-secret, role: admin}
    - {name: auditor, token: viewer-secret, role: viewer}
`

// gatewayConfig is a gateway with route "api" on "/" to target, guarded by the
// cache policy with settings (a YAML flow mapping).
func gatewayConfig(target, settings string) string {
	return gatewaytest.Server + adminTokens + fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      cache: %s
`, target, settings)
}

// start runs a gateway whose caches go by clock (nil: the real one).
func start(t *testing.T, yaml string, clock *testutil.Clock) *gatewaytest.Gateway {
	t.Helper()
	if clock != nil {
		restore := cache.SetClock(clock.Now)
		t.Cleanup(restore) // after the gateway's shutdown: cleanups run last first
	}
	return gatewaytest.Start(t, yaml, nil)
}

type answer struct {
	status int
	header http.Header
	body   string
}

// send makes a request with headers (name, value pairs) and reads the
// whole answer.
func send(t *testing.T, method, url string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func get(t *testing.T, url string, header ...string) answer {
	t.Helper()
	return send(t, "GET", url, header...)
}

// expect checks an answer's X-Cache and body.
func expect(t *testing.T, what string, a answer, xcache, body string) {
	t.Helper()
	if a.status != 200 && body != "" {
		t.Errorf("%s: status %d, want 200", what, a.status)
	}
	if got := a.header.Get("X-Cache"); got != xcache {
		t.Errorf("%s: X-Cache %q, want %q", what, got, xcache)
	}
	if body != "" && a.body != body {
		t.Errorf("%s: body %q, want %q", what, a.body, body)
	}
}

func expectCalls(t *testing.T, b *backend, want int64) {
	t.Helper()
	if got := b.calls.Load(); got != want {
		t.Errorf("backend called %d times, want %d", got, want)
	}
}
