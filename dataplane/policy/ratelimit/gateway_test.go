package ratelimit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/policytest"
	"github.com/tollgate/tollgate/internal/testutil"

	_ "github.com/tollgate/tollgate/dataplane/policy/ratelimit"
)

func init() { policytest.RegisterConsumerPolicy() }

// server trusts X-Forwarded-For from loopback, so tests can play clients
// with different addresses.
const server = `server:
  proxy_listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  trusted_proxies: ["127.0.0.0/8"]
logging: {access_log: "off"}
`

// mockRoute is a route answering 200 itself, with the given policies (a
// YAML flow mapping).
func mockRoute(name, path, policies string) string {
	return fmt.Sprintf(`
  - name: %s
    paths: [%q]
    mock: {status: 200, body: ok}
    policies: %s`, name, path, policies)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) String() string { return fmt.Sprintf("%d %v %s", a.status, a.header, a.body) }

// get sends a GET with headers given as name, value pairs.
func get(t *testing.T, url string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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

// statuses sends n requests and returns their statuses.
func statuses(t *testing.T, n int, url string, header ...string) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		out[i] = get(t, url, header...).status
	}
	return out
}

func wantStatuses(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: statuses %v, want %v", what, got, want)
	}
}

func wantHeader(t *testing.T, a answer, name, want string) {
	t.Helper()
	if got := a.header.Get(name); got != want {
		t.Errorf("%s: %q, want %q (answer %d)", name, got, want, a.status)
	}
}

func TestHeadersAndRefusal(t *testing.T) {
	g := gatewaytest.Start(t, server+"routes:"+mockRoute("r", "/r", "{rate-limit: {limit: 3, window: 1h, per: route}}"), nil)
	// One request per 20 minutes, three at once.
	for i := 1; i <= 3; i++ {
		a := get(t, g.URL+"/r")
		if a.status != 200 {
			t.Fatalf("request %d: %s", i, a)
		}
		wantHeader(t, a, "RateLimit-Limit", "3")
		wantHeader(t, a, "RateLimit-Remaining", fmt.Sprint(3-i))
		wantHeader(t, a, "RateLimit-Reset", fmt.Sprint(1200*i)) // until the allowance is whole
	}
	a := get(t, g.URL+"/r")
	if a.status != 429 {
		t.Fatalf("4th request: %s, want 429", a)
	}
	wantHeader(t, a, "Retry-After", "1200")
	wantHeader(t, a, "RateLimit-Limit", "3")
	wantHeader(t, a, "RateLimit-Remaining", "0")
	wantHeader(t, a, "RateLimit-Reset", "1200") // until one is admitted again
	var body struct {
		Error struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Error.Code != "rate_limited" || body.Error.Status != 429 {
		t.Fatalf("429 body %q (%v), want the JSON error rate_limited", a.body, err)
	}
	get(t, g.URL+"/r")
	if v, _ := g.MetricValue(t, `tollgate_rate_limited_total{route="r"}`); v != "2" {
		t.Fatalf("tollgate_rate_limited_total = %q, want 2", v)
	}
}

func TestHeadersOnUpstreamErrors(t *testing.T) {
	g := gatewaytest.Start(t, server+fmt.Sprintf(`
services:
  - name: gone
    targets: [{url: "http://%s"}]
routes:
  - name: r
    paths: ["/"]
    service: gone
    policies: {rate-limit: {limit: 10, window: 1m}}
`, testutil.ClosedPort(t)), nil)
	a := get(t, g.URL+"/")
	if a.status != 502 {
		t.Fatalf("answer %s, want 502 from a closed upstream", a)
	}
	wantHeader(t, a, "RateLimit-Limit", "10")
	wantHeader(t, a, "RateLimit-Remaining", "9")
	wantHeader(t, a, "RateLimit-Reset", "6")
}

func TestKeys(t *testing.T) {
	g := gatewaytest.Start(t, server+"routes:"+
		mockRoute("by-ip", "/ip", "{rate-limit: {limit: 2, window: 1h, per: ip}}")+
		mockRoute("by-consumer", "/consumer", "{test-consumer: {}, rate-limit: {limit: 2, window: 1h, per: consumer}}")+
		mockRoute("no-auth", "/no-auth", "{rate-limit: {limit: 2, window: 1h}}")+
		mockRoute("by-header", "/header", "{rate-limit: {limit: 2, window: 1h, per: 'header:X-Api-Key'}}")+
		mockRoute("by-route", "/route", "{rate-limit: {limit: 2, window: 1h, per: route}}")+`
consumers:
  - name: alice
  - name: bob
`, nil)
	xff := "X-Forwarded-For"

	wantStatuses(t, "ip 10.0.0.1", statuses(t, 3, g.URL+"/ip", xff, "10.0.0.1"), 200, 200, 429)
	wantStatuses(t, "ip 10.0.0.2", statuses(t, 1, g.URL+"/ip", xff, "10.0.0.2"), 200)

	who := "X-Test-Consumer"
	wantStatuses(t, "alice from two addresses", append(
		statuses(t, 2, g.URL+"/consumer", who, "alice", xff, "10.0.0.1"),
		statuses(t, 1, g.URL+"/consumer", who, "alice", xff, "10.0.0.2")...), 200, 200, 429)
	wantStatuses(t, "bob", statuses(t, 1, g.URL+"/consumer", who, "bob", xff, "10.0.0.1"), 200)
	// Without a consumer, per: consumer counts by client address.
	wantStatuses(t, "no consumer, 10.0.0.1", statuses(t, 3, g.URL+"/no-auth", xff, "10.0.0.1"), 200, 200, 429)
	wantStatuses(t, "no consumer, 10.0.0.2", statuses(t, 1, g.URL+"/no-auth", xff, "10.0.0.2"), 200)

	key := "X-Api-Key"
	wantStatuses(t, "key a from two addresses", append(
		statuses(t, 2, g.URL+"/header", key, "a", xff, "10.0.0.1"),
		statuses(t, 1, g.URL+"/header", key, "a", xff, "10.0.0.2")...), 200, 200, 429)
	wantStatuses(t, "key b", statuses(t, 1, g.URL+"/header", key, "b"), 200)
	long := strings.Repeat("x", 500) // kept as a digest
	wantStatuses(t, "long key", statuses(t, 3, g.URL+"/header", key, long), 200, 200, 429)
	// Without the header, the client address is the key.
	wantStatuses(t, "no key, 10.0.0.1", statuses(t, 3, g.URL+"/header", xff, "10.0.0.1"), 200, 200, 429)
	wantStatuses(t, "no key, 10.0.0.2", statuses(t, 1, g.URL+"/header", xff, "10.0.0.2"), 200)

	wantStatuses(t, "route from two addresses", append(
		statuses(t, 2, g.URL+"/route", xff, "10.0.0.1"),
		statuses(t, 1, g.URL+"/route", xff, "10.0.0.2")...), 200, 200, 429)
}

func TestReloadKeepsCounters(t *testing.T) {
	limited := func(limit int, extra string) string {
		return server + "routes:" + mockRoute("r", "/r", fmt.Sprintf("{rate-limit: {limit: %d, window: 1h, per: route}}", limit)) + extra
	}
	g := gatewaytest.Start(t, limited(2, ""), nil)
	wantStatuses(t, "before the reload", statuses(t, 3, g.URL+"/r"), 200, 200, 429)

	g.Reload(t, limited(2, mockRoute("other", "/other", "{}")))
	wantStatuses(t, "after a reload keeping the limit", statuses(t, 1, g.URL+"/r"), 429)

	g.Reload(t, limited(3, ""))
	wantStatuses(t, "after a reload changing the limit", statuses(t, 4, g.URL+"/r"), 200, 200, 200, 429)
}

func TestSettingsErrors(t *testing.T) {
	yaml := `routes:
  - name: r
    paths: ["/"]
    mock: {status: 200}
    policies:
      rate-limit:
        limit: 0
        window: 1m
        per: user
        sync: eventually
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		"t.yaml:7:9: limit must be at least 1",
		`t.yaml:9:9: per "user" is not consumer, ip, route or header:NAME`,
		`t.yaml:10:9: sync "eventually" is not strict or batched`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}

	for settings, want := range map[string]string{
		"{limit: 10, window: 1m, fault_tolerant: true}": `t.yaml:1:102: unknown field "fault_tolerant"`,
		"{limit: 10}":                                                                      "t.yaml:1:66: window is required",
		"{limit: 2000000000000, window: 1s}":                                               "t.yaml:1:79: limit must be at most 1000000000000",
		"{limit: 100000000, window: 1s}":                                                   "",
		"{limit: 10, window: 1s, per: 'header:'}":                                          `per "header:" is not consumer`,
		"{limit: 10, window: 1s, sync_interval: 2m}":                                       "sync_interval must be between 1ms and 1m",
		"{limit: 10, window: 1s, redis_timeout: 1us}":                                      "redis_timeout must be between 1ms and 10s",
		"{limit: 10, window: 1s, per: 'header:X-Api-Key'}":                                 "",
		"{limit: 10, window: 1s, sync: batched, sync_interval: 10ms, redis_timeout: 50ms}": "",
	} {
		_, err := config.Parse("t.yaml", []byte(`routes: [{name: r, paths: ["/"], mock: {status: 200}, policies: {rate-limit: `+settings+`}}]`))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", settings, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one with %q", settings, err, want)
		}
	}
}

// With from_plan, each consumer is held to its plan's rate_limit; others
// fall back to the policy's own limit, or to none without one.
func TestLimitsFromPlans(t *testing.T) {
	g := gatewaytest.Start(t, server+`
plans:
  - {name: free, rate_limit: {limit: 2, window: 1h}}
  - {name: pro, rate_limit: {limit: 4, window: 1h}}
  - {name: unlimited}
consumers:
  - {name: fay, plan: free}
  - {name: pat, plan: pro}
  - {name: una, plan: unlimited}
routes:`+mockRoute("plans", "/plans", `{test-consumer: {}, rate-limit: {from_plan: true}}`)+
		mockRoute("fallback", "/fallback", `{test-consumer: {}, rate-limit: {from_plan: true, limit: 1, window: 1h}}`)+"\n", nil)
	wantStatuses(t, "free plan", statuses(t, 3, g.URL+"/plans", "X-Test-Consumer", "fay"), 200, 200, 429)
	wantStatuses(t, "pro plan", statuses(t, 5, g.URL+"/plans", "X-Test-Consumer", "pat"), 200, 200, 200, 200, 429)
	wantHeader(t, get(t, g.URL+"/plans", "X-Test-Consumer", "pat"), "RateLimit-Limit", "4")
	wantStatuses(t, "plan without a rate limit", statuses(t, 5, g.URL+"/plans", "X-Test-Consumer", "una"), 200, 200, 200, 200, 200)
	if a := get(t, g.URL+"/plans", "X-Test-Consumer", "una"); a.header.Get("RateLimit-Limit") != "" {
		t.Errorf("unlimited consumer got RateLimit-Limit %q", a.header.Get("RateLimit-Limit"))
	}
	wantStatuses(t, "the policy's own limit for the others", statuses(t, 2, g.URL+"/fallback", "X-Test-Consumer", "una"), 200, 429)
	wantStatuses(t, "a plan's limit over the policy's", statuses(t, 3, g.URL+"/fallback", "X-Test-Consumer", "fay"), 200, 200, 429)

	_, err := config.Parse("t.yaml", []byte(`routes:
  - name: r
    paths: [/]
    mock: {status: 200}
    policies:
      rate-limit: {from_plan: true, per: ip}
`))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:6:") || !strings.Contains(err.Error(), "from_plan limits per consumer") {
		t.Errorf("from_plan with per ip: %v", err)
	}
}
