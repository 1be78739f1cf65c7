package introspection_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/introspection"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// idp is a real RFC 7662 introspection endpoint over HTTP, counting the
// calls it answers.
type idp struct {
	*httptest.Server
	calls atomic.Int64

	mu     sync.Mutex
	tokens map[string]map[string]any // token to its answer when active
	status int                       // non-zero: fail every call with it
	gate   chan struct{}             // non-nil: calls wait until it closes
}

const (
	idpClient = "gateway"
	idpSecret = "s3cret"
)

func newIdP(t testing.TB) *idp {
	t.Helper()
	d := &idp{tokens: map[string]map[string]any{}}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

func (d *idp) serve(w http.ResponseWriter, r *http.Request) {
	d.calls.Add(1)
	d.mu.Lock()
	gate, status := d.gate, d.status
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != idpClient || pass != idpSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	answer, ok := d.tokens[r.PostForm.Get("token")]
	d.mu.Unlock()
	// Like a real server, an expired token is no longer active.
	if exp, has := answer["exp"].(int64); !ok || has && time.Now().Unix() >= exp {
		answer = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

func (d *idp) issue(token string, claims map[string]any) {
	answer := map[string]any{"active": true}
	for k, v := range claims {
		answer[k] = v
	}
	d.mu.Lock()
	d.tokens[token] = answer
	d.mu.Unlock()
}

func (d *idp) set(f func(d *idp)) {
	d.mu.Lock()
	f(d)
	d.mu.Unlock()
}

// echoBackend answers with the request headers it got, as JSON.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{}
		for k, v := range r.Header {
			h[k] = strings.Join(v, "|")
		}
		json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(be.Close)
	return be
}

// gatewayYAML is a gateway whose routes each carry the introspection
// policy: routes maps a path to the policy's extra settings (YAML lines
// indented by 8 spaces).
func gatewayYAML(backend, endpoint, secret string, routes map[string]string) string {
	var b strings.Builder
	b.WriteString(gatewaytest.Server)
	b.WriteString("services:\n  - name: api\n    targets: [{url: \"" + backend + "\"}]\nroutes:\n")
	for _, path := range slices.Sorted(maps.Keys(routes)) {
		name := strings.Trim(path, "/")
		if name == "" {
			name = "root"
		}
		b.WriteString("  - name: " + name + "\n    paths: [\"" + path + "\"]\n    service: api\n    policies:\n")
		b.WriteString("      oauth2-introspection:\n        url: \"" + endpoint + "\"\n        client_id: " + idpClient +
			"\n        client_secret: " + secret + "\n" + routes[path])
	}
	b.WriteString(`consumers:
  - {name: alice, groups: [partners, beta]}
  - {name: guest}
`)
	return b.String()
}

// answer is what a client got: the status, the upstream's view of the
// request headers (on success) or the gateway's error code.
type answer struct {
	status    int
	upstream  map[string]string
	code      string
	challenge string
}

func call(t *testing.T, url, token string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
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
	a := answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate")}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.upstream); err != nil {
			t.Fatalf("upstream answer %q: %v", body, err)
		}
		return a
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("gateway error %q: %v", body, err)
	}
	a.code = e.Error.Code
	return a
}

func TestActiveTokenIsAcceptedWithItsConsumer(t *testing.T) {
	d := newIdP(t)
	d.issue("tok-alice", map[string]any{"username": "alice", "scope": "read write", "sub": "u-1"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{
		"/":       "        claims_to_headers: {scope: X-Token-Scope, sub: X-User-Id, email: X-User-Email}\n",
		"/hidden": "        hide_credentials: true\n",
	}), nil)

	a := call(t, g.URL+"/x", "tok-alice", "X-Consumer-Name", "admin", "X-User-Email", "forged@example.com")
	if a.status != 200 {
		t.Fatalf("status %d (%s), want 200", a.status, a.code)
	}
	want := map[string]string{
		"X-Consumer-Name":   "alice",
		"X-Consumer-Groups": "partners, beta",
		"X-Token-Scope":     "read write",
		"X-User-Id":         "u-1",
		"Authorization":     "Bearer tok-alice",
	}
	for k, v := range want {
		if a.upstream[k] != v {
			t.Errorf("upstream %s = %q, want %q", k, a.upstream[k], v)
		}
	}
	// The token has no email: the client's own X-User-Email must not pass
	// for one.
	if v, ok := a.upstream["X-User-Email"]; ok {
		t.Errorf("client-sent X-User-Email reached upstream: %q", v)
	}

	if a := call(t, g.URL+"/hidden", "tok-alice"); a.status != 200 || a.upstream["Authorization"] != "" {
		t.Errorf("hide_credentials: status %d, upstream Authorization %q", a.status, a.upstream["Authorization"])
	}
}

func TestInactiveTokenIsRefused(t *testing.T) {
	d := newIdP(t)
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": ""}), nil)

	a := call(t, g.URL+"/x", "revoked")
	if a.status != 401 || a.code != "invalid_token" {
		t.Fatalf("inactive token: %d %q, want 401 invalid_token", a.status, a.code)
	}
	if !strings.Contains(a.challenge, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q, want an invalid_token challenge", a.challenge)
	}
	// The refusal is cached for negative_cache_ttl (10s by default).
	if a := call(t, g.URL+"/x", "revoked"); a.status != 401 || d.calls.Load() != 1 {
		t.Errorf("second request: %d after %d calls, want 401 after 1", a.status, d.calls.Load())
	}

	a = call(t, g.URL+"/x", "")
	if a.status != 401 || a.challenge != `Bearer realm="tollgate"` {
		t.Errorf("no token: %d, WWW-Authenticate %q", a.status, a.challenge)
	}
	if d.calls.Load() != 1 {
		t.Errorf("a request without a token called the endpoint")
	}
}

func TestAnswersAreCached(t *testing.T) {
	d := newIdP(t)
	d.issue("tok-a", map[string]any{"username": "alice"})
	d.issue("tok-b", map[string]any{"username": "alice"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": ""}), nil)

	for i := range 3 {
		if a := call(t, g.URL+"/x", "tok-a"); a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.code)
		}
	}
	if n := d.calls.Load(); n != 1 {
		t.Errorf("3 requests with one token made %d calls, want 1", n)
	}
	call(t, g.URL+"/x", "tok-b")
	if n := d.calls.Load(); n != 2 {
		t.Errorf("another token: %d calls, want 2", n)
	}

	// A reload keeps the cache.
	cfg := gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": "", "/other": ""})
	g.Reload(t, cfg)
	if a := call(t, g.URL+"/x", "tok-a"); a.status != 200 || d.calls.Load() != 2 {
		t.Errorf("after reload: %d, %d calls; want 200 from the cache (2 calls)", a.status, d.calls.Load())
	}
}

func TestCachedAnswerEndsWithTheToken(t *testing.T) {
	d := newIdP(t)
	exp := time.Now().Add(2 * time.Second).Unix()
	d.issue("short", map[string]any{"username": "alice", "exp": exp})
	be := echoBackend(t)
	// cache_ttl is long: only the token's exp can end its cache entry.
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": "        cache_ttl: 1h\n"}), nil)

	if a := call(t, g.URL+"/x", "short"); a.status != 200 {
		t.Fatalf("fresh token: %d %s", a.status, a.code)
	}
	testutil.Eventually(t, 5*time.Second, "the cached answer outlived the token's exp", func() bool {
		return call(t, g.URL+"/x", "short").status == 401
	})
	if time.Now().Unix() < exp {
		t.Errorf("refused before exp")
	}
	if n := d.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2 (one before, one after exp)", n)
	}
}

func TestConcurrentRequestsShareOneCall(t *testing.T) {
	d := newIdP(t)
	d.issue("tok", map[string]any{"username": "alice"})
	gate := make(chan struct{})
	d.set(func(d *idp) { d.gate = gate })
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": ""}), nil)

	const n = 8
	statuses := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, g.URL+"/x", nil)
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	// Hold the endpoint's answer until every request is inside the gateway.
	testutil.Eventually(t, 5*time.Second, "requests in flight", func() bool {
		v, _ := g.MetricValue(t, "tollgate_inflight_requests")
		return v == "8"
	})
	release()
	for range n {
		if s := <-statuses; s != 200 {
			t.Errorf("status %d, want 200", s)
		}
	}
	if c := d.calls.Load(); c != 1 {
		t.Errorf("%d concurrent requests made %d calls, want 1", n, c)
	}
}

func TestEndpointFailureIsNotAnInvalidToken(t *testing.T) {
	be := echoBackend(t)

	t.Run("unreachable", func(t *testing.T) {
		g := gatewaytest.Start(t, gatewayYAML(be.URL, "http://"+testutil.ClosedPort(t)+"/introspect", idpSecret,
			map[string]string{"/": "        timeout: 2s\n"}), nil)
		if a := call(t, g.URL+"/x", "tok"); a.status != 503 || a.code != "auth_unavailable" {
			t.Errorf("endpoint down: %d %q, want 503 auth_unavailable", a.status, a.code)
		}
	})

	t.Run("5xx then back", func(t *testing.T) {
		d := newIdP(t)
		d.issue("tok", map[string]any{"username": "alice"})
		d.set(func(d *idp) { d.status = http.StatusBadGateway })
		g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": ""}), nil)
		if a := call(t, g.URL+"/x", "tok"); a.status != 503 || a.code != "auth_unavailable" {
			t.Errorf("endpoint 502: %d %q, want 503 auth_unavailable", a.status, a.code)
		}
		// Failures are not cached: the next request asks again.
		d.set(func(d *idp) { d.status = 0 })
		if a := call(t, g.URL+"/x", "tok"); a.status != 200 {
			t.Errorf("endpoint back: %d %q, want 200", a.status, a.code)
		}
		if n := d.calls.Load(); n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
	})

	t.Run("slow", func(t *testing.T) {
		d := newIdP(t)
		gate := make(chan struct{})
		defer close(gate)
		d.set(func(d *idp) { d.gate = gate })
		g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": "        timeout: 100ms\n"}), nil)
		if a := call(t, g.URL+"/x", "tok"); a.status != 503 || a.code != "auth_unavailable" {
			t.Errorf("endpoint too slow: %d %q, want 503 auth_unavailable", a.status, a.code)
		}
	})
}

func TestWrongClientSecret(t *testing.T) {
	d := newIdP(t)
	d.issue("tok", map[string]any{"username": "alice"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, "not-the-secret", map[string]string{"/": ""}), nil)

	// The endpoint refused the gateway, not the token: 503, not 401.
	for range 2 {
		if a := call(t, g.URL+"/x", "tok"); a.status != 503 || a.code != "auth_unavailable" {
			t.Errorf("refused client credentials: %d %q, want 503 auth_unavailable", a.status, a.code)
		}
	}
	if n := d.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2 (a refusal of the gateway is not cached)", n)
	}
}

func TestScopes(t *testing.T) {
	d := newIdP(t)
	d.issue("tok", map[string]any{"username": "alice", "scope": "orders:read profile"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{
		"/read":  "        scopes: [\"orders:read\"]\n",
		"/write": "        scopes: [\"orders:read\", \"orders:write\"]\n",
	}), nil)

	if a := call(t, g.URL+"/read", "tok"); a.status != 200 {
		t.Errorf("granted scope: %d %q, want 200", a.status, a.code)
	}
	if a := call(t, g.URL+"/write", "tok"); a.status != 403 || a.code != "insufficient_scope" {
		t.Errorf("missing scope: %d %q, want 403 insufficient_scope", a.status, a.code)
	}
	// Both routes ask the same endpoint as the same client: one cache.
	if n := d.calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func TestUserWithoutConsumer(t *testing.T) {
	d := newIdP(t)
	d.issue("tok-zoe", map[string]any{"username": "zoe", "sub": "u-9"})
	d.issue("tok-svc", map[string]any{"client_id": "billing", "scope": "orders:read"})
	d.issue("tok-sub", map[string]any{"sub": "alice"})
	d.issue("tok-nobody", map[string]any{"scope": "orders:read"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{
		"/open":   "",
		"/strict": "        consumer_required: true\n",
		"/bysub":  "        consumer_claim: sub\n",
	}), nil)

	cases := []struct {
		path, token string
		status      int
		consumer    string
	}{
		{"/open", "tok-zoe", 200, "zoe"},     // accepted as a consumer of its own, as Kong does
		{"/open", "tok-svc", 200, "billing"}, // client credentials grant: named by client_id
		{"/open", "tok-sub", 200, "alice"},   // no username: sub names the consumer
		{"/open", "tok-nobody", 401, ""},     // names nobody
		{"/strict", "tok-zoe", 401, ""},      // consumer_required
		{"/strict", "tok-sub", 200, "alice"}, // a configured consumer
		{"/bysub", "tok-zoe", 200, "u-9"},    // another field than the one that filled the cache
	}
	for _, c := range cases {
		a := call(t, g.URL+c.path, c.token)
		if a.status != c.status || a.upstream["X-Consumer-Name"] != c.consumer {
			t.Errorf("%s with %s: %d %q consumer %q, want %d consumer %q",
				c.path, c.token, a.status, a.code, a.upstream["X-Consumer-Name"], c.status, c.consumer)
		}
		if c.status == 200 && c.consumer != "alice" && a.upstream["X-Consumer-Groups"] != "" {
			t.Errorf("%s: unconfigured consumer has groups %q", c.token, a.upstream["X-Consumer-Groups"])
		}
	}
	if a := call(t, g.URL+"/strict", "tok-zoe"); a.code != "unknown_consumer" {
		t.Errorf("consumer_required code %q, want unknown_consumer", a.code)
	}
}

func TestAnonymous(t *testing.T) {
	d := newIdP(t)
	d.issue("tok", map[string]any{"username": "alice"})
	be := echoBackend(t)
	g := gatewaytest.Start(t, gatewayYAML(be.URL, d.URL, idpSecret, map[string]string{"/": "        anonymous: guest\n"}), nil)

	for _, c := range []struct{ token, consumer string }{{"tok", "alice"}, {"", "guest"}, {"revoked", "guest"}} {
		if a := call(t, g.URL+"/x", c.token); a.status != 200 || a.upstream["X-Consumer-Name"] != c.consumer {
			t.Errorf("token %q: %d consumer %q, want 200 %q", c.token, a.status, a.upstream["X-Consumer-Name"], c.consumer)
		}
	}
}

func TestSettingsErrorsArePlaced(t *testing.T) {
	yaml := `services:
  - name: api
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: checked
    paths: ["/"]
    service: api
    policies:
      oauth2-introspection:
        url: "ftp://idp.example.com/introspect"
        client_id: gateway
        client_secret: s3cret
        scopes: [read, "two words"]
        claims_to_headers: {sub: X-Consumer-Id, email: X-User-Email}
  - name: decoded
    paths: ["/decoded"]
    service: api
    policies:
      oauth2-introspection:
        url: "https://idp.example.com/introspect"
        client_id: gateway
        client_secret: s3cret
        cache_ttl: 5 minutes
        claim_to_headers: {}
  - name: missing
    paths: ["/missing"]
    service: api
    policies:
      oauth2-introspection: {client_secret: s3cret}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		"t.yaml:10:9: url must be an absolute http or https URL",
		"t.yaml:13:24: a scope is one non-empty word",
		"t.yaml:14:29: header \"X-Consumer-Id\" is reserved",
		"t.yaml:23:9: invalid duration \"5 minutes\"",
		"t.yaml:24:9: unknown field \"claim_to_headers\"; did you mean \"claims_to_headers\"?",
		"t.yaml:29:7: url is required",
		"t.yaml:29:7: client_id is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
