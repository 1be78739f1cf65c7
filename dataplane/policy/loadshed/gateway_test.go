package loadshed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/policytest"
	"github.com/tollgate/tollgate/internal/testutil"

	_ "github.com/tollgate/tollgate/dataplane/policy/loadshed"
)

func init() { policytest.RegisterConsumerPolicy() }

// The test-refuse policy refuses requests carrying X-Test-Refuse with 403,
// in a phase before load-shed's.
func init() {
	policy.Register("test-refuse", policy.Protect, func(_ *struct{}, _ *policy.Build) (any, error) {
		return refuser{}, nil
	})
}

type refuser struct{}

func (refuser) Handle(x *policy.Exchange) *policy.Reject {
	if len(x.Header("X-Test-Refuse")) > 0 {
		return policy.Forbidden
	}
	return nil
}

// backend holds every request until the test lets it answer: it reports
// who arrived (the consumer, or X-Test-Name) on arrived, and answers once
// per value on release. /stream answers a first line at once and the rest
// of a long body after the release.
type backend struct {
	*httptest.Server
	arrived chan string
	release chan struct{}
	stop    chan struct{}
}

func newBackend(t *testing.T) *backend {
	b := &backend{arrived: make(chan string, 64), release: make(chan struct{}, 64), stop: make(chan struct{})}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.Header.Get("X-Test-Name")
		if name == "" {
			name = r.Header.Get("X-Consumer-Name")
		}
		stream := r.URL.Path == "/stream"
		if stream {
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
		}
		b.arrived <- name
		select {
		case <-b.release:
		case <-b.stop:
			return
		}
		if !stream {
			io.WriteString(w, "ok "+name)
			return
		}
		line := strings.Repeat("x", 1023) + "\n"
		for range 1024 {
			if _, err := io.WriteString(w, line); err != nil {
				return
			}
		}
	}))
	t.Cleanup(b.Close)
	return b
}

// next returns who arrived next at the backend.
func (b *backend) next(t *testing.T) string {
	t.Helper()
	select {
	case name := <-b.arrived:
		return name
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the backend")
		return ""
	}
}

// letOneAnswer releases one held request.
func (b *backend) letOneAnswer() { b.release <- struct{}{} }

// start runs a gateway with one route "api" to b, guarded by load-shed
// with the given settings (a YAML flow mapping), test-consumer in front,
// and consumers alice (paid plan), bob (free plan), carol (no plan) and
// guest (no plan, for requests naming no consumer).
func start(t *testing.T, b *backend, settings string) *gatewaytest.Gateway {
	t.Helper()
	g := gatewaytest.Start(t, gatewayConfig(b.URL, settings), nil)
	// Runs before the gateway's own shutdown, which would wait for held
	// requests.
	t.Cleanup(func() { close(b.stop) })
	return g
}

func gatewayConfig(target, settings string) string {
	return gatewaytest.Server + fmt.Sprintf(`
consumers:
  - {name: alice, plan: pro}
  - {name: bob, plan: free}
  - {name: carol}
  - {name: guest}
plans:
  - {name: pro, price: {amount: 4900, currency: usd, period: month}}
  - {name: free, price: {amount: 0, currency: usd, period: month}}
services:
  - name: be
    targets: [{url: %q}]
    retries: {attempts: 1}
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      test-consumer: {anonymous: guest}
      test-refuse: {}
      load-shed: %s
`, target, settings)
}

type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func (a answer) String() string { return fmt.Sprintf("%d %s %v", a.status, a.body, a.err) }

// send sends GET path as consumer (or, when it is not a consumer's name,
// with it as X-Test-Name) and delivers the answer on the channel.
func send(g *gatewaytest.Gateway, path, who string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", g.URL+path, nil)
		switch who {
		case "alice", "bob", "carol":
			req.Header.Set("X-Test-Consumer", who)
		case "refused-early":
			req.Header.Set("X-Test-Refuse", "1")
		default:
			req.Header.Set("X-Test-Name", who)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		ch <- answer{status: resp.StatusCode, header: resp.Header, body: string(body), err: err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return answer{}
	}
}

func wantOK(t *testing.T, a answer, who string) {
	t.Helper()
	if a.status != 200 || a.body != "ok "+who {
		t.Fatalf("want 200 for %s, got %s", who, a)
	}
}

// wantOverloaded checks a refusal: 503, the gateway's JSON error with code
// overloaded, and Retry-After.
func wantOverloaded(t *testing.T, a answer, retryAfter string) {
	t.Helper()
	var e struct {
		Error struct {
			Status    int    `json:"status"`
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("refusal is not the gateway's JSON error: %s", a)
	}
	if a.status != 503 || e.Error.Status != 503 || e.Error.Code != "overloaded" || e.Error.RequestID == "" {
		t.Fatalf("want 503 overloaded, got %s", a)
	}
	if got := a.header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
}

func metric(t *testing.T, g *gatewaytest.Gateway, series string) string {
	t.Helper()
	v, ok := g.MetricValue(t, series)
	if !ok {
		t.Fatalf("no %s in the metrics", series)
	}
	return v
}

func waitQueuedAtGateway(t *testing.T, g *gatewaytest.Gateway, n int) {
	t.Helper()
	want := fmt.Sprint(n)
	testutil.Eventually(t, 5*time.Second, "requests queued: "+want, func() bool {
		v, _ := g.MetricValue(t, `tollgate_load_shed_queued{route="api"}`)
		return v == want
	})
}

// waitIdle waits until the gateway has no request in flight: every slot
// that is going to come back has.
func waitIdle(t *testing.T, g *gatewaytest.Gateway) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "no request in flight", func() bool {
		v, _ := g.MetricValue(t, "tollgate_inflight_requests")
		return v == "0"
	})
}

func TestConcurrencyLimitHolds(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{max_concurrent: 2, queue_timeout: 30s}")
	if got := metric(t, g, `tollgate_load_shed_limit{route="api"}`); got != "2" {
		t.Fatalf("limit gauge %s, want 2", got)
	}
	first, second := send(g, "/", "a"), send(g, "/", "b")
	arrived := map[string]bool{b.next(t): true, b.next(t): true}
	if !arrived["a"] || !arrived["b"] {
		t.Fatalf("arrived %v, want a and b", arrived)
	}
	third := send(g, "/", "c")
	waitQueuedAtGateway(t, g, 1)
	if len(b.arrived) != 0 {
		t.Fatalf("%q reached the backend beyond the limit", <-b.arrived)
	}
	b.letOneAnswer() // a or b
	if got := b.next(t); got != "c" {
		t.Fatalf("after one finished, %q arrived, want c", got)
	}
	b.letOneAnswer()
	b.letOneAnswer()
	for _, ch := range []<-chan answer{first, second, third} {
		if a := wait(t, ch); a.status != 200 {
			t.Fatalf("want 200, got %s", a)
		}
	}
	waitQueuedAtGateway(t, g, 0)
	if got := metric(t, g, `tollgate_load_shed_total{route="api"}`); got != "0" {
		t.Fatalf("refusals %s, want 0", got)
	}
}

func TestQueueTimeoutRefuses(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{max_concurrent: 1, queue_timeout: 100ms}")
	held := send(g, "/", "held")
	b.next(t)
	wantOverloaded(t, wait(t, send(g, "/", "late")), "1")
	if got := metric(t, g, `tollgate_load_shed_total{route="api"}`); got != "1" {
		t.Fatalf("refusals %s, want 1", got)
	}
	b.letOneAnswer()
	wantOK(t, wait(t, held), "held")
	// The refused request never held a slot, so it gives none back: still
	// exactly one at a time.
	waitIdle(t, g)
	again := send(g, "/", "again")
	b.next(t)
	wantOverloaded(t, wait(t, send(g, "/", "late")), "1")
	b.letOneAnswer()
	wantOK(t, wait(t, again), "again")
}

func TestFullQueueRefusesAtOnce(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{max_concurrent: 1, queue_size: 1, queue_timeout: 1m}")
	held := send(g, "/", "held")
	b.next(t)
	queued := send(g, "/", "queued")
	waitQueuedAtGateway(t, g, 1)
	// Refused without waiting for the minute of queue_timeout (which the
	// answer's deadline would not survive).
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "60")
	b.letOneAnswer()
	wantOK(t, wait(t, held), "held")
	if got := b.next(t); got != "queued" {
		t.Fatalf("%q arrived, want the queued request", got)
	}
	b.letOneAnswer()
	wantOK(t, wait(t, queued), "queued")
}

// noQueue is one request at a time and no waiting: a slot that did not come
// back shows at once as a 503.
const noQueue = "{max_concurrent: 1, queue_timeout: 0s}"

// wantSlotFree checks that the route's one slot is free again.
func wantSlotFree(t *testing.T, g *gatewaytest.Gateway, b *backend) {
	t.Helper()
	waitIdle(t, g)
	ch := send(g, "/", "next")
	if got := b.next(t); got != "next" {
		t.Fatalf("%q arrived, want next", got)
	}
	b.letOneAnswer()
	wantOK(t, wait(t, ch), "next")
}

// Finish comes for every request of the route, also those refused before
// the upstream call; only those that took a slot give one back.
func TestRefusedRequestsGiveNoSlotBack(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, noQueue)
	held := send(g, "/", "held")
	b.next(t)
	for range 3 {
		wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")          // by load-shed
		if a := wait(t, send(g, "/", "refused-early")); a.status != 403 { // by an earlier policy
			t.Fatalf("want 403 from test-refuse, got %s", a)
		}
	}
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")
	b.letOneAnswer()
	wantOK(t, wait(t, held), "held")
	wantSlotFree(t, g, b)
}

func TestSlotReleasedAfterStreamedResponse(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, noQueue)
	resp, err := http.Get(g.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	b.next(t)
	// While the body streams, the slot is taken.
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")
	b.letOneAnswer()
	n, err := io.Copy(io.Discard, br)
	if err != nil || n != 1<<20 {
		t.Fatalf("read %d bytes of the streamed body, %v", n, err)
	}
	wantSlotFree(t, g, b)
}

func TestSlotReleasedAfterUpstreamError(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, noQueue)
	g.Reload(t, gatewayConfig("http://"+testutil.ClosedPort(t), noQueue))
	for i := range 3 {
		a := wait(t, send(g, "/", "x"))
		if a.status != 502 || !strings.Contains(a.body, `"upstream_unavailable"`) {
			t.Fatalf("request %d: want 502 upstream_unavailable, got %s", i, a)
		}
	}
}

func TestSlotReleasedAfterClientDisconnect(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, noQueue)

	t.Run("waiting for the upstream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/", nil)
		req.Header.Set("X-Test-Name", "gone")
		done := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		b.next(t)
		cancel()
		if err := <-done; err == nil {
			t.Fatal("the request was not cut off")
		}
		b.letOneAnswer()
		wantSlotFree(t, g, b)
	})

	t.Run("during a streamed body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "first\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		b.next(t)
		cancel()
		resp.Body.Close()
		b.letOneAnswer()
		wantSlotFree(t, g, b)
	})
}

func TestPaidConsumersAreServedFirst(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{max_concurrent: 1, queue_size: 10, queue_timeout: 1m}")
	held := send(g, "/", "held")
	b.next(t)
	bob := send(g, "/", "bob")
	waitQueuedAtGateway(t, g, 1)
	carol := send(g, "/", "carol")
	waitQueuedAtGateway(t, g, 2)
	alice := send(g, "/", "alice")
	waitQueuedAtGateway(t, g, 3)

	for _, want := range []string{"alice", "bob", "carol"} {
		b.letOneAnswer()
		if got := b.next(t); got != want {
			t.Fatalf("%q reached the upstream, want %q", got, want)
		}
	}
	b.letOneAnswer()
	wantOK(t, wait(t, held), "held")
	wantOK(t, wait(t, alice), "alice")
	wantOK(t, wait(t, bob), "bob")
	wantOK(t, wait(t, carol), "carol")
}

func TestPaidConsumerEvictsUnpaidWaiter(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{max_concurrent: 1, queue_size: 2, queue_timeout: 1m}")
	held := send(g, "/", "held")
	b.next(t)
	bob := send(g, "/", "bob")
	waitQueuedAtGateway(t, g, 1)
	carol := send(g, "/", "carol")
	waitQueuedAtGateway(t, g, 2)

	// The queue is full: an unpaid arrival is refused, a paid one takes the
	// place of the unpaid request that came last.
	wantOverloaded(t, wait(t, send(g, "/", "anonymous")), "60")
	alice := send(g, "/", "alice")
	wantOverloaded(t, wait(t, carol), "60")
	waitQueuedAtGateway(t, g, 2)

	for _, want := range []string{"alice", "bob"} {
		b.letOneAnswer()
		if got := b.next(t); got != want {
			t.Fatalf("%q reached the upstream, want %q", got, want)
		}
	}
	b.letOneAnswer()
	wantOK(t, wait(t, held), "held")
	wantOK(t, wait(t, alice), "alice")
	wantOK(t, wait(t, bob), "bob")
	if got := metric(t, g, `tollgate_load_shed_total{route="api"}`); got != "2" {
		t.Fatalf("refusals %s, want 2", got)
	}
}

// A reload that keeps the settings keeps the slots taken; one that changes
// them starts a new limiter, and the requests of the old one give their
// slots back to it, once.
func TestReloadWhileSlotsAreHeld(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, noQueue)
	held := send(g, "/", "held")
	b.next(t)

	g.Reload(t, gatewayConfig(b.URL, noQueue))
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")

	two := "{max_concurrent: 2, queue_timeout: 0s}"
	g.Reload(t, gatewayConfig(b.URL, two))
	if got := metric(t, g, `tollgate_load_shed_limit{route="api"}`); got != "2" {
		t.Fatalf("limit gauge %s after the reload, want 2", got)
	}
	// The new limiter's slots are its own: two more.
	x, y := send(g, "/", "x"), send(g, "/", "y")
	b.next(t)
	b.next(t)
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")
	for range 3 {
		b.letOneAnswer()
	}
	wantOK(t, wait(t, held), "held")
	wantOK(t, wait(t, x), "x")
	wantOK(t, wait(t, y), "y")
	waitIdle(t, g)

	// Had a slot been given back twice, a third request would get through.
	x, y = send(g, "/", "x"), send(g, "/", "y")
	b.next(t)
	b.next(t)
	wantOverloaded(t, wait(t, send(g, "/", "refused")), "1")
	b.letOneAnswer()
	b.letOneAnswer()
	wait(t, x)
	wait(t, y)

	// Without load-shed the route's limit gauge goes.
	g.Reload(t, gatewayConfig(b.URL, "null"))
	if v, ok := g.MetricValue(t, `tollgate_load_shed_limit{route="api"}`); ok {
		t.Fatalf("limit gauge %s for a route without load-shed", v)
	}
}

func TestAdaptiveModeStartsAtItsCeiling(t *testing.T) {
	b := newBackend(t)
	g := start(t, b, "{mode: adaptive, max_concurrent: 50, min_concurrent: 5, target_latency: 200ms, queue_timeout: 0s}")
	if got := metric(t, g, `tollgate_load_shed_limit{route="api"}`); got != "50" {
		t.Fatalf("limit gauge %s, want 50", got)
	}
	ch := send(g, "/", "a")
	b.next(t)
	b.letOneAnswer()
	wantOK(t, wait(t, ch), "a")
}

func TestSettingsErrors(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: a
    paths: ["/a"]
    service: be
    policies:
      load-shed: {queue_timeout: 1s}
  - name: b
    paths: ["/b"]
    service: be
    policies:
      load-shed:
        max_concurrent: 10
        mode: adaptive
        min_concurrent: 20
  - name: c
    paths: ["/c"]
    service: be
    policies:
      load-shed: {max_concurrent: 5, target_latency: 100ms, queue_size: -1}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		"t.yaml:9:7: max_concurrent is required",
		"t.yaml:14:7: target_latency is required in adaptive mode",
		"t.yaml:17:9: must be between 1 and max_concurrent (10), got 20",
		"t.yaml:22:38: only used with mode: adaptive",
		"t.yaml:22:61: must be between 0 and 1000000, got -1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
