package cors_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	_ "github.com/tollgate/tollgate/dataplane/policy/cors"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// test-token-auth stands in for a real authentication policy: a request
// without "X-Test-Token: ok" is refused with 401, as any authentication
// would refuse a preflight (which carries no credentials).
func init() {
	policy.Register("test-token-auth", policy.Authenticate, func(_ *policy.AuthSettings, b *policy.Build) (any, error) {
		c, _ := b.Consumers.Get("app")
		return tokenAuth{c}, nil
	})
}

type tokenAuth struct{ app *policy.Consumer }

func (a tokenAuth) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	if string(x.Header("X-Test-Token")) == "ok" {
		return a.app, nil
	}
	return nil, nil
}

// backend counts requests and answers with a Vary of its own, which the
// gateway must keep.
type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("X-Total", "7")
		if r.Method == "OPTIONS" {
			w.Header().Set("X-Upstream-Preflight", "1")
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	return b
}

// configYAML protects the route with test-token-auth behind cors.
func configYAML(backendURL, corsSettings string) string {
	return gatewaytest.Server + fmt.Sprintf(`
consumers: [{name: app}]
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      test-token-auth: {}
      cors: %s
`, backendURL, corsSettings)
}

const appSettings = `{origins: ["https://app.example.com", "https://*.example.org"], credentials: true,
  headers: [Content-Type, X-Trace], exposed_headers: [X-Total, X-Request-ID], max_age: 10m}`

type exchange struct {
	status int
	header http.Header
	code   string
	body   string
}

func send(t *testing.T, method, url string, headers ...string) exchange {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	ex := exchange{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error answer is not the gateway's JSON: %q", b)
		}
		ex.code = e.Error.Code
	}
	return ex
}

func preflight(t *testing.T, url, origin, method, headers string) exchange {
	t.Helper()
	h := []string{"Origin", origin, "Access-Control-Request-Method", method}
	if headers != "" {
		h = append(h, "Access-Control-Request-Headers", headers)
	}
	return send(t, "OPTIONS", url, h...)
}

func wantHeaders(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if g := strings.Join(got.Values(name), ", "); g != v {
			t.Errorf("%s = %q, want %q", name, g, v)
		}
	}
}

var allowHeaderNames = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Access-Control-Expose-Headers",
}

func wantNoCORSHeaders(t *testing.T, got http.Header) {
	t.Helper()
	for _, name := range allowHeaderNames {
		if v := got.Get(name); v != "" {
			t.Errorf("%s = %q, want none", name, v)
		}
	}
}

// A preflight is answered by the gateway before authentication, which
// would refuse it: it carries no credentials.
func TestPreflightIsAnsweredBeforeAuthentication(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, appSettings), nil)

	got := preflight(t, g.URL+"/orders", "https://app.example.com", "PUT", "content-type,x-trace")
	if got.status != 204 || got.body != "" {
		t.Fatalf("preflight: %d %q, want 204 without a body", got.status, got.body)
	}
	wantHeaders(t, got.header, map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, HEAD, PUT, PATCH, POST, DELETE",
		"Access-Control-Allow-Headers":     "Content-Type, X-Trace",
		"Access-Control-Max-Age":           "600",
		"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	})
	if got.header.Get("X-Request-ID") == "" {
		t.Error("preflight answer without X-Request-ID")
	}
	// A wildcard origin, any depth of subdomain.
	got = preflight(t, g.URL+"/orders", "https://eu.shop.example.org", "DELETE", "")
	if got.status != 204 || got.header.Get("Access-Control-Allow-Origin") != "https://eu.shop.example.org" {
		t.Errorf("wildcard origin preflight: %d %v", got.status, got.header)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d preflights", n)
	}
}

// What the policy does not allow gets 403 and none of the Allow headers:
// by the Fetch standard the browser fails the preflight on those alone.
func TestPreflightRefusals(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, appSettings), nil)
	for _, tc := range []struct {
		name, origin, method, headers string
	}{
		{"unknown origin", "https://evil.example.com", "PUT", ""},
		{"wildcard needs a subdomain", "https://example.org", "PUT", ""},
		{"wildcard keeps the scheme", "http://shop.example.org", "PUT", ""},
		{"wildcard keeps the port", "https://shop.example.org:8443", "PUT", ""},
		{"look-alike domain", "https://evilexample.org", "PUT", ""},
		{"suffix inside a longer host", "https://app.example.com.evil.net", "PUT", ""},
		{"null origin", "null", "PUT", ""},
		{"method", "https://app.example.com", "PROPFIND", ""},
		{"method is case-sensitive", "https://app.example.com", "put", ""},
		{"header", "https://app.example.com", "PUT", "content-type, x-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := preflight(t, g.URL+"/", tc.origin, tc.method, tc.headers)
			if got.status != 403 || got.code != "cors_forbidden" {
				t.Fatalf("got %d %q, want 403 cors_forbidden", got.status, got.code)
			}
			wantNoCORSHeaders(t, got.header)
			if !strings.Contains(got.header.Get("Vary"), "Origin") {
				t.Errorf("Vary = %q", got.header.Get("Vary"))
			}
		})
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d preflights", n)
	}
}

func TestActualRequests(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, appSettings), nil)

	t.Run("allowed origin", func(t *testing.T) {
		got := send(t, "GET", g.URL+"/", "Origin", "https://app.example.com", "X-Test-Token", "ok")
		if got.status != 200 || got.body != "ok" {
			t.Fatalf("%d %q", got.status, got.body)
		}
		wantHeaders(t, got.header, map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers":    "X-Total, X-Request-ID",
			"Access-Control-Allow-Methods":     "",
			"Vary":                             "Accept-Encoding, Origin", // the upstream's Vary kept
		})
	})
	t.Run("error answers carry the headers", func(t *testing.T) {
		// The 401 of authentication: a script must be able to read it.
		got := send(t, "GET", g.URL+"/", "Origin", "https://app.example.com")
		if got.status != 401 {
			t.Fatalf("%d, want 401", got.status)
		}
		wantHeaders(t, got.header, map[string]string{
			"Access-Control-Allow-Origin":      "https://app.example.com",
			"Access-Control-Allow-Credentials": "true",
			"Vary":                             "Origin",
		})
	})
	t.Run("other origin goes on without CORS headers", func(t *testing.T) {
		before := be.hits.Load()
		got := send(t, "GET", g.URL+"/", "Origin", "https://evil.example.com", "X-Test-Token", "ok")
		if got.status != 200 || be.hits.Load() != before+1 {
			t.Fatalf("%d", got.status)
		}
		wantNoCORSHeaders(t, got.header)
		wantHeaders(t, got.header, map[string]string{"Vary": "Accept-Encoding, Origin"})
	})
	t.Run("no origin", func(t *testing.T) {
		got := send(t, "GET", g.URL+"/", "X-Test-Token", "ok")
		wantNoCORSHeaders(t, got.header)
		wantHeaders(t, got.header, map[string]string{"Vary": "Accept-Encoding, Origin"})
	})
	t.Run("OPTIONS without a requested method is no preflight", func(t *testing.T) {
		before := be.hits.Load()
		got := send(t, "OPTIONS", g.URL+"/", "Origin", "https://app.example.com", "X-Test-Token", "ok")
		if got.status != 200 || be.hits.Load() != before+1 || got.header.Get("X-Upstream-Preflight") != "1" {
			t.Fatalf("%d %v", got.status, got.header)
		}
		wantHeaders(t, got.header, map[string]string{"Access-Control-Allow-Origin": "https://app.example.com"})
	})
}

// "*" without credentials is the same answer for every origin: sent on
// every response, and nothing varies. With credentials the origin is
// reflected instead (browsers refuse "*" with credentials).
func TestAnyOrigin(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, `{}`), nil) // origins default to "*"
	for _, origin := range []string{"https://anyone.test", ""} {
		got := send(t, "GET", g.URL+"/", "Origin", origin, "X-Test-Token", "ok")
		wantHeaders(t, got.header, map[string]string{
			"Access-Control-Allow-Origin":      "*",
			"Access-Control-Allow-Credentials": "",
			"Vary":                             "Accept-Encoding",
		})
	}
	got := preflight(t, g.URL+"/", "https://anyone.test", "PATCH", "authorization, x-anything")
	if got.status != 204 {
		t.Fatalf("preflight %d", got.status)
	}
	wantHeaders(t, got.header, map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Headers": "authorization, x-anything", // reflected
		"Access-Control-Max-Age":       "",
	})
	if got := preflight(t, g.URL+"/", "null", "GET", ""); got.status != 204 || got.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("null origin under a fixed *: %d %v", got.status, got.header)
	}

	g.Reload(t, configYAML(be.URL, `{origins: ["*"], credentials: true, methods: ["*"]}`))
	got = send(t, "GET", g.URL+"/", "Origin", "https://anyone.test", "X-Test-Token", "ok")
	wantHeaders(t, got.header, map[string]string{
		"Access-Control-Allow-Origin":      "https://anyone.test",
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Accept-Encoding, Origin",
	})
	got = preflight(t, g.URL+"/", "https://anyone.test", "PROPFIND", "")
	if got.status != 204 {
		t.Fatalf("preflight %d", got.status)
	}
	wantHeaders(t, got.header, map[string]string{
		"Access-Control-Allow-Origin":  "https://anyone.test",
		"Access-Control-Allow-Methods": "PROPFIND", // "*" reflects: it works with credentials too
	})
	// "*" never stands for "null" when it would be reflected.
	if got := preflight(t, g.URL+"/", "null", "GET", ""); got.status != 403 {
		t.Errorf("null origin under reflected *: %d", got.status)
	}
}

func TestPreflightContinueReachesTheUpstream(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      cors: {origins: ["https://app.example.com"], preflight_continue: true}
`, be.URL), nil)
	got := preflight(t, g.URL+"/", "https://app.example.com", "PUT", "")
	if got.status != 200 || got.header.Get("X-Upstream-Preflight") != "1" || be.hits.Load() != 1 {
		t.Fatalf("preflight did not reach the upstream: %d %v", got.status, got.header)
	}
	wantNoCORSHeaders(t, got.header)
}

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      cors:
        origins:
          - https://app.example.com/
          - https://api.*.example.com
          - app.example.com
        methods: ["GET", "BAD METHOD"]
        exposed_headers: ["*"]
        credentials: true
        max_age: 100ms
  - name: s
    paths: ["/s"]
    service: be
    policies:
      cors: {max_age: -5s}
  - name: u
    paths: ["/u"]
    service: be
    policies:
      cors: {max_age: 10}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:11:13: "https://app.example.com/" is not an origin`,
		`t.yaml:12:13: "https://api.*.example.com": a wildcard may only stand for the leftmost labels`,
		`t.yaml:13:13: "app.example.com" is not an origin`,
		`t.yaml:14:26: "BAD METHOD" is not an HTTP method`,
		`t.yaml:15:27: "*" exposes nothing when credentials is true`,
		`t.yaml:17:9: must be at least 1s`,
		`t.yaml:22:14: duration "-5s" must not be negative`,
		`t.yaml:27:14: expected a string, got 10`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
