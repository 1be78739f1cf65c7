package quota_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy/quota"
	"github.com/tollgate/tollgate/dataplane/policy/ratelimit/redistest"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/policytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

func init() { policytest.RegisterConsumerPolicy() }

// start is the tests' clock's first instant: Tuesday 2023-11-14 22:13:20
// UTC, 6400s before the day ends.
var start = time.Unix(1_700_000_000, 0)

// clockAt makes the policy's clock a test clock at start plus d.
func clockAt(t *testing.T, d time.Duration) *testutil.Clock {
	c := testutil.NewClock()
	c.Advance(d)
	quota.SetClock(t, c.Now)
	return c
}

// gatewayConfig has consumers alice and bob on plan daily (2 a day), wendy
// on weekly (1), mona on monthly (1), yuri on yearly (1), carol without a
// plan and dave on a plan without quota, all suffixed with suffix. Route
// /q authenticates them with test-consumer; /open has no authentication.
func gatewayConfig(redisURL, suffix string) string {
	consumer := func(name, plan string) string {
		s := fmt.Sprintf("\n  - name: %s%s", name, suffix)
		if plan != "" {
			s += "\n    plan: " + plan
		}
		return s
	}
	return gatewaytest.Server + fmt.Sprintf("redis: %q\n", redisURL) + `plans:
  - {name: daily, quota: {requests: 2, period: day}}
  - {name: weekly, quota: {requests: 1, period: week}}
  - {name: monthly, quota: {requests: 1, period: month}}
  - {name: yearly, quota: {requests: 1, period: year}}
  - {name: fast, rate_limit: {limit: 1, window: 1h}}
consumers:` + consumer("alice", "daily") + consumer("bob", "daily") + consumer("wendy", "weekly") +
		consumer("mona", "monthly") + consumer("yuri", "yearly") + consumer("carol", "") + consumer("dave", "fast") + `
routes:
  - {name: q, paths: ["/q"], mock: {status: 200, body: ok}, policies: {test-consumer: {}, quota: {}}}
  - {name: open, paths: ["/open"], mock: {status: 200, body: ok}, policies: {quota: {per: consumer}}}
`
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) String() string { return fmt.Sprintf("%d %v %s", a.status, a.header, a.body) }

// call sends GET path as consumer ("" for none).
func call(t *testing.T, g *gatewaytest.Gateway, path, consumer string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if consumer != "" {
		req.Header.Set("X-Test-Consumer", consumer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// want checks an answer's status and headers (name, value pairs; "" for
// absent).
func want(t *testing.T, what string, a answer, status int, header ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %s, want status %d", what, a, status)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if got := a.header.Get(header[i]); got != header[i+1] {
			t.Errorf("%s: %s %q, want %q", what, header[i], got, header[i+1])
		}
	}
}

func TestUnderQuotaPassesWithHeaders(t *testing.T) {
	clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	want(t, "first", call(t, g, "/q", "alice"), 200, "X-Quota-Limit", "2", "X-Quota-Remaining", "1", "X-Quota-Reset", "6400")
	want(t, "second", call(t, g, "/q", "alice"), 200, "X-Quota-Limit", "2", "X-Quota-Remaining", "0", "X-Quota-Reset", "6400",
		"Retry-After", "")
}

func TestOverQuotaIsRefused(t *testing.T) {
	clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	call(t, g, "/q", "alice")
	call(t, g, "/q", "alice")
	a := call(t, g, "/q", "alice")
	want(t, "third", a, 429, "Retry-After", "6400", "X-Quota-Limit", "2", "X-Quota-Remaining", "0", "X-Quota-Reset", "6400")
	var body struct {
		Error struct {
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if body.Error.Status != 429 || body.Error.Code != "quota_exceeded" || !strings.Contains(body.Error.Message, "quota: exceeded") {
		t.Errorf("error %+v, want 429 quota_exceeded saying \"quota: exceeded\"", body.Error)
	}
	if v, _ := g.MetricValue(t, `tollgate_rate_limited_total{route="q"}`); v != "1" {
		t.Errorf("tollgate_rate_limited_total{route=\"q\"} = %q, want 1", v)
	}
}

func TestPeriodRolloverResets(t *testing.T) {
	clock := clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	call(t, g, "/q", "alice")
	call(t, g, "/q", "wendy")
	clock.Advance(6400*time.Second - time.Second) // 23:59:59, Tuesday
	call(t, g, "/q", "alice")
	want(t, "last second of the day", call(t, g, "/q", "alice"), 429, "Retry-After", "1")
	clock.Advance(time.Second) // Wednesday
	want(t, "next day", call(t, g, "/q", "alice"), 200, "X-Quota-Remaining", "1", "X-Quota-Reset", "86400")

	// The ISO week ends on Sunday night.
	want(t, "same week", call(t, g, "/q", "wendy"), 429)
	sunday := time.Date(2023, 11, 19, 23, 59, 59, 0, time.UTC)
	clock.Advance(sunday.Sub(clock.Now()))
	want(t, "last second of the week", call(t, g, "/q", "wendy"), 429, "Retry-After", "1")
	clock.Advance(time.Second)
	want(t, "Monday", call(t, g, "/q", "wendy"), 200, "X-Quota-Remaining", "0", "X-Quota-Reset", "604800")
}

func TestResetIsTheEndOfTheCalendarPeriod(t *testing.T) {
	clockAt(t, 0) // Tuesday 2023-11-14 22:13:20 UTC
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	for consumer, end := range map[string]time.Time{
		"alice": time.Date(2023, 11, 15, 0, 0, 0, 0, time.UTC),
		"wendy": time.Date(2023, 11, 20, 0, 0, 0, 0, time.UTC), // Monday
		"mona":  time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC),
		"yuri":  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want(t, consumer, call(t, g, "/q", consumer), 200, "X-Quota-Reset", fmt.Sprint(int64(end.Sub(start)/time.Second)))
	}
}

func TestConsumersAreCountedSeparately(t *testing.T) {
	clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	for range 3 {
		call(t, g, "/q", "alice")
	}
	want(t, "alice", call(t, g, "/q", "alice"), 429)
	want(t, "bob, same plan", call(t, g, "/q", "bob"), 200, "X-Quota-Remaining", "1")
}

func TestWithoutQuotaNotLimited(t *testing.T) {
	clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("", ""), nil)
	for i := range 4 {
		for _, c := range []struct{ path, consumer, what string }{
			{"/q", "carol", "no plan"},
			{"/q", "dave", "plan without quota"},
			{"/open", "", "no consumer"},
		} {
			want(t, fmt.Sprintf("%s, request %d", c.what, i+1), call(t, g, c.path, c.consumer), 200,
				"X-Quota-Limit", "", "X-Quota-Remaining", "", "X-Quota-Reset", "")
		}
	}
}

// uniqueSuffix keeps a run's consumers, hence Redis keys, apart from other
// runs'.
func uniqueSuffix() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read does not fail
	return "-" + hex.EncodeToString(b[:])
}

func TestRedisCountIsSharedByGatewaysAndRestarts(t *testing.T) {
	srv := redistest.Start(t)
	// Counts in Redis expire at the end of the period, which must be in
	// the future: the clock runs from now.
	clockAt(t, time.Since(start))
	suffix := uniqueSuffix()
	alice := "alice" + suffix
	cfg := gatewayConfig(srv.URL, suffix)
	a := gatewaytest.Start(t, cfg, nil)
	b := gatewaytest.Start(t, cfg, nil)
	want(t, "gateway a", call(t, a, "/q", alice), 200, "X-Quota-Remaining", "1")
	want(t, "gateway b", call(t, b, "/q", alice), 200, "X-Quota-Remaining", "0")
	want(t, "gateway a again", call(t, a, "/q", alice), 429)
	want(t, "bob on gateway b", call(t, b, "/q", "bob"+suffix), 200, "X-Quota-Remaining", "1")
	restarted := gatewaytest.Start(t, cfg, nil)
	want(t, "a new gateway", call(t, restarted, "/q", alice), 429)
}

func TestRedisUnreachableCountsLocally(t *testing.T) {
	clockAt(t, 0)
	g := gatewaytest.Start(t, gatewayConfig("redis://"+testutil.ClosedPort(t), ""), nil)
	want(t, "first", call(t, g, "/q", "alice"), 200, "X-Quota-Remaining", "1")
	want(t, "second", call(t, g, "/q", "alice"), 200, "X-Quota-Remaining", "0")
	want(t, "third", call(t, g, "/q", "alice"), 429)
}

func TestBadSettingsAreReportedWithTheirPlace(t *testing.T) {
	yaml := `routes:
  - name: r
    paths: ["/r"]
    mock: {status: 200}
    policies:
      quota:
        per: ip
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("per: ip accepted")
	}
	if w := `t.yaml:7:9: per "ip" is not consumer`; !strings.Contains(err.Error(), w) {
		t.Errorf("error lacks %q:\n%v", w, err)
	}
}
