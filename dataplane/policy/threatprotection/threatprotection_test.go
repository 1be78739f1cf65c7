package threatprotection_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/threatprotection"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// test-secret-auth is an authentication policy for these tests: no
// X-Secret header is no credential, "right" is alice, anything else is a
// refused credential (which threat-protection counts).
func init() {
	policy.Register("test-secret-auth", policy.Authenticate, func(_ *policy.AuthSettings, b *policy.Build) (any, error) {
		alice, ok := b.Consumers.Get("alice")
		if !ok {
			return nil, fmt.Errorf("consumer alice missing")
		}
		return secretAuth{alice}, nil
	})
}

type secretAuth struct{ alice *policy.Consumer }

var errWrongSecret = &policy.Reject{Status: 401, Code: "invalid_secret", Message: "wrong secret"}

func (a secretAuth) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	switch v := string(x.Header("X-Secret")); v {
	case "":
		return nil, nil
	case "right":
		return a.alice, nil
	}
	return nil, errWrongSecret
}

// backend records what reaches it.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
	last received
}

type received struct {
	body          []byte
	contentLength int64
	chunked       bool
}

func newBackend(t *testing.T) *backend {
	be := &backend{}
	be.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		be.mu.Lock()
		be.hits++
		be.last = received{body: body, contentLength: r.ContentLength, chunked: len(r.TransferEncoding) > 0}
		be.mu.Unlock()
		w.Write([]byte("ok"))
	}))
	t.Cleanup(be.Close)
	return be
}

func (be *backend) received() (int, received) {
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.hits, be.last
}

// start runs a gateway with one route "/" to be, authentication by
// test-secret-auth when auth is set, and threat-protection (settings as
// YAML flow mapping) as a global policy. The loopback peer is a trusted
// proxy, so X-Forwarded-For chooses the client address.
func start(t *testing.T, be *backend, tp string, auth bool) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, configYAML(be, tp, auth), nil)
}

func configYAML(be *backend, tp string, auth bool) string {
	routePolicies := "{}"
	if auth {
		routePolicies = "{test-secret-auth: {}}"
	}
	return fmt.Sprintf(`server:
  proxy_listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  trusted_proxies: ["127.0.0.1/32"]
logging: {access_log: "off"}
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/api"]
    service: be
    policies: %s
  - name: other
    paths: ["/other"]
    service: be
    policies: %s
consumers:
  - name: alice
policies:
  threat-protection: %s
`, be.URL, routePolicies, routePolicies, tp)
}

type answer struct {
	status int
	header http.Header
	err    struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
}

// send makes a request from client address ip with headers (name, value
// pairs); a nil body is none, a body of type io.Reader (not *bytes.Reader)
// goes chunked.
func send(t *testing.T, method, url, ip string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || json.Unmarshal(e.Error, &a.err) != nil {
			t.Fatalf("%d answer is not the gateway's JSON error: %q", resp.StatusCode, raw)
		}
	}
	return a
}

func postJSON(t *testing.T, g *gatewaytest.Gateway, doc string, headers ...string) answer {
	t.Helper()
	return send(t, "POST", g.URL+"/api", "", strings.NewReader(doc), append([]string{"Content-Type", "application/json"}, headers...)...)
}

// chunked hides the length of r from the HTTP client, which then sends it
// chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func object(keys int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

const limits = "{max_json_depth: 4, max_json_keys: 5, max_json_array_items: 3, max_json_string_length: 8, max_body_bytes: 2048}"

func TestShapeLimitsRefuseBeforeTheBackend(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, limits, false)
	for _, c := range []struct {
		name, doc, code, names string
	}{
		{"deep", nested(5), "threat_detected", "max_json_depth (4)"},
		{"deep arrays", `[[[[[1]]]]]`, "threat_detected", "max_json_depth (4)"},
		{"many keys", object(6), "threat_detected", "max_json_keys (5)"},
		{"many items", `{"a":[1,2,3,4]}`, "threat_detected", "max_json_array_items (3)"},
		{"long string", `{"a":"123456789"}`, "threat_detected", "max_json_string_length (8 bytes)"},
		{"long key", `{"123456789":1}`, "threat_detected", "max_json_string_length (8 bytes)"},
		{"malformed", `{"a":1,}`, "invalid_json", "not valid JSON"},
		{"not JSON at all", `hello`, "invalid_json", "not valid JSON"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := postJSON(t, g, c.doc)
			if a.status != 400 || a.err.Code != c.code || !strings.Contains(a.err.Message, c.names) {
				t.Errorf("%s: %d %+v, want 400 %s naming %q", c.doc, a.status, a.err, c.code, c.names)
			}
		})
	}
	// The same shapes, chunked.
	a := send(t, "POST", g.URL+"/api", "", chunked{strings.NewReader(nested(5))}, "Content-Type", "application/json")
	if a.status != 400 || a.err.Code != "threat_detected" {
		t.Errorf("chunked deep JSON: %d %+v", a.status, a.err)
	}
	if hits, _ := be.received(); hits != 0 {
		t.Errorf("%d refused documents reached the backend", hits)
	}

	// At the limits, and with a JSON media type of another name, all pass.
	for _, doc := range []string{nested(4), object(5), `[1,2,3]`, `"12345678"`, `{"k":"\u00e9\u00e9\u00e9\u00e9"}`} {
		for _, ct := range []string{"application/json", "application/problem+json; charset=utf-8", "Application/JSON"} {
			if a := send(t, "POST", g.URL+"/api", "", strings.NewReader(doc), "Content-Type", ct); a.status != 200 {
				t.Errorf("%s as %s: %d %+v", doc, ct, a.status, a.err)
			}
		}
	}
	// Other media types are not inspected, and an empty JSON body is none.
	if a := send(t, "POST", g.URL+"/api", "", strings.NewReader(nested(50)), "Content-Type", "text/plain"); a.status != 200 {
		t.Errorf("text/plain body: %d %+v", a.status, a.err)
	}
	if a := send(t, "POST", g.URL+"/api", "", http.NoBody, "Content-Type", "application/json"); a.status != 200 {
		t.Errorf("empty JSON body: %d %+v", a.status, a.err)
	}
}

func TestJSONWithinLimitsReachesTheBackendByteForByte(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, "{}", false) // defaults
	// Escapes, odd spacing and non-ASCII: what the client sent, not a
	// re-encoding, must arrive.
	doc := "{ \"name\" : \"Zürich \\u00e9\\n\",\n\t\"list\": [1, 2.50, -3e2, true, null], \"o\": {\"x\": {}} }"
	big := `{"items":[` + strings.Repeat(`{"id":12345,"v":"abcdefghij"},`, 2000) + `{}]}` // ~60 KiB: several reads
	for _, c := range []struct {
		name    string
		doc     string
		chunked bool
	}{
		{"fixed length", doc, false},
		{"chunked", doc, true},
		{"large fixed length", big, false},
		{"large chunked", big, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(c.doc)
			if c.chunked {
				body = chunked{body}
			}
			if a := send(t, "POST", g.URL+"/api", "", body, "Content-Type", "application/json"); a.status != 200 {
				t.Fatalf("status %d %+v", a.status, a.err)
			}
			_, got := be.received()
			if !bytes.Equal(got.body, []byte(c.doc)) {
				t.Errorf("backend got %d bytes, differing from the %d sent", len(got.body), len(c.doc))
			}
			// A chunked body was read whole, so it goes on with its length.
			if got.contentLength != int64(len(c.doc)) || got.chunked {
				t.Errorf("backend saw Content-Length %d, chunked %v; want %d, not chunked", got.contentLength, got.chunked, len(c.doc))
			}
		})
	}
}

func TestOtherBodiesStreamThroughUnread(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, "{max_body_bytes: 1024}", false)
	payload := make([]byte, 3<<20) // far above max_body_bytes: it is never held
	rand.Read(payload)
	for _, isChunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(payload)
		if isChunked {
			body = chunked{body}
		}
		if a := send(t, "POST", g.URL+"/api", "", body, "Content-Type", "application/octet-stream"); a.status != 200 {
			t.Fatalf("chunked %v: status %d %+v", isChunked, a.status, a.err)
		}
		if _, got := be.received(); !bytes.Equal(got.body, payload) {
			t.Errorf("chunked %v: backend got %d bytes, differing from the %d sent", isChunked, len(got.body), len(payload))
		}
	}
}

func TestJSONLargerThanMaxBodyBytesIs413(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, "{max_body_bytes: 1024}", false)
	doc := `{"a":"` + strings.Repeat("x", 2000) + `"}`
	if a := postJSON(t, g, doc); a.status != 413 || a.err.Code != "body_too_large" {
		t.Errorf("announced length: %d %+v", a.status, a.err)
	}
	a := send(t, "POST", g.URL+"/api", "", chunked{strings.NewReader(doc)}, "Content-Type", "application/json")
	if a.status != 413 || a.err.Code != "body_too_large" {
		t.Errorf("chunked: %d %+v", a.status, a.err)
	}
	// Exactly the limit is fine.
	exact := `{"a":"` + strings.Repeat("x", 1024-8) + `"}`
	if a := send(t, "POST", g.URL+"/api", "", chunked{strings.NewReader(exact)}, "Content-Type", "application/json"); a.status != 200 {
		t.Errorf("%d bytes chunked: %d %+v", len(exact), a.status, a.err)
	}
	if hits, _ := be.received(); hits != 1 {
		t.Errorf("backend hits %d, want 1", hits)
	}
}

func TestCompressedJSONIsRefused(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, "{}", false)
	a := postJSON(t, g, "\x1f\x8b\x08\x00", "Content-Encoding", "gzip")
	if a.status != 415 || a.err.Code != "unsupported_encoding" {
		t.Errorf("gzip JSON: %d %+v", a.status, a.err)
	}
}

// TestStalledJSONBodyIs408 sends half a body and stops: the gateway gives
// up after its body read timeout (10s) rather than holding the connection.
func TestStalledJSONBodyIs408(t *testing.T) {
	t.Parallel()
	be := newBackend(t)
	g := start(t, be, "{}", false)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	if hits, _ := be.received(); hits != 0 {
		t.Error("a stalled body reached the backend")
	}
}

const banSettings = "{ban_after_auth_failures: 3, ban_for: 1m, ban_window: 1m}"

func withClock(t *testing.T) *testutil.Clock {
	clk := testutil.NewClock()
	t.Cleanup(threatprotection.SetClock(clk.Now))
	return clk
}

func TestBanAfterRepeatedAuthFailures(t *testing.T) {
	clk := withClock(t)
	be := newBackend(t)
	g := start(t, be, banSettings, true)
	const attacker, bystander = "203.0.113.7", "198.51.100.9"
	get := func(ip, secret string) answer {
		return send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", secret)
	}

	for i := range 3 {
		if a := get(attacker, "wrong"); a.status != 401 || a.err.Code != "invalid_secret" {
			t.Fatalf("failure %d: %d %+v", i+1, a.status, a.err)
		}
	}
	// Banned now, even with the right secret, and told for how long.
	a := get(attacker, "right")
	if a.status != 403 || a.err.Code != "banned" || a.header.Get("Retry-After") != "60" {
		t.Fatalf("after 3 failures: %d %+v Retry-After %q", a.status, a.err, a.header.Get("Retry-After"))
	}
	// A request without credentials and one with a JSON body are refused
	// just the same, and so is every route with the policy.
	if a := send(t, "GET", g.URL+"/other", attacker, nil); a.status != 403 || a.err.Code != "banned" {
		t.Errorf("other route: %d %+v", a.status, a.err)
	}
	if a := postJSON(t, g, nested(100), "X-Forwarded-For", attacker); a.status != 403 || a.err.Code != "banned" {
		t.Errorf("JSON while banned: %d %+v", a.status, a.err)
	}
	// Others are not affected.
	if a := get(bystander, "right"); a.status != 200 {
		t.Errorf("another address: %d %+v", a.status, a.err)
	}
	if v, _ := g.MetricValue(t, "tollgate_bans_total"); v != "1" {
		t.Errorf("tollgate_bans_total = %q, want 1", v)
	}
	if v, _ := g.MetricValue(t, "tollgate_banned_clients"); v != "1" {
		t.Errorf("tollgate_banned_clients = %q, want 1", v)
	}

	clk.Advance(45 * time.Second)
	if a := get(attacker, "right"); a.status != 403 || a.header.Get("Retry-After") != "15" {
		t.Errorf("45s into the ban: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	clk.Advance(15 * time.Second)
	if a := get(attacker, "right"); a.status != 200 {
		t.Errorf("after ban_for: %d %+v", a.status, a.err)
	}
	if v, _ := g.MetricValue(t, "tollgate_banned_clients"); v != "0" {
		t.Errorf("tollgate_banned_clients after the ban = %q, want 0", v)
	}
	// The count starts afresh after a ban.
	for range 2 {
		get(attacker, "wrong")
	}
	if a := get(attacker, "right"); a.status != 200 {
		t.Errorf("2 failures after a ban: %d %+v", a.status, a.err)
	}
	if hits, _ := be.received(); hits != 3 {
		t.Errorf("backend hits %d, want 3 (the bystander, and the attacker twice after the ban)", hits)
	}
}

func TestFailuresOutsideTheWindowDoNotBan(t *testing.T) {
	clk := withClock(t)
	g := start(t, newBackend(t), banSettings, true)
	const ip = "192.0.2.44"
	fail := func() {
		if a := send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "wrong"); a.status != 401 {
			t.Fatalf("failure: %d %+v", a.status, a.err)
		}
	}
	fail()
	clk.Advance(50 * time.Second)
	fail()
	clk.Advance(11 * time.Second) // the first failure is now more than ban_window old
	fail()
	if a := send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "right"); a.status != 200 {
		t.Fatalf("3 failures spread over 61s banned: %d %+v", a.status, a.err)
	}
	fail() // the last three are within 21s
	if a := send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "right"); a.status != 403 {
		t.Fatalf("3 failures within ban_window did not ban: %d %+v", a.status, a.err)
	}
}

func TestBansSurviveReloads(t *testing.T) {
	withClock(t)
	be := newBackend(t)
	g := start(t, be, banSettings, true)
	const ip = "192.0.2.45"
	for range 3 {
		send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "wrong")
	}
	// Other JSON limits, same ban settings: same table.
	g.Reload(t, configYAML(be, "{max_json_depth: 8, ban_after_auth_failures: 3, ban_for: 1m, ban_window: 1m}", true))
	if a := send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "right"); a.status != 403 || a.err.Code != "banned" {
		t.Errorf("after a reload: %d %+v", a.status, a.err)
	}
	// Banning switched off: nobody is banned.
	g.Reload(t, configYAML(be, "{}", true))
	if a := send(t, "GET", g.URL+"/api", ip, nil, "X-Secret", "right"); a.status != 200 {
		t.Errorf("with bans off: %d %+v", a.status, a.err)
	}
}

func TestSettingsErrorsAreLocated(t *testing.T) {
	for _, c := range []struct{ settings, want string }{
		{"{max_json_depth: -1}", "t.yaml:3:5"},
		{"{max_body_bytes: 1000000000}", "t.yaml:3:5"},
		{"{ban_for: soon}", "t.yaml:3:5"},
		{"{max_json_dept: 3}", "t.yaml:3:5"},
		{"{ban_after_auth_failures: 101}", "t.yaml:3:5"},
	} {
		yaml := "policies:\n  threat-protection:\n    " + strings.Trim(c.settings, "{}") + "\n"
		_, err := config.Parse("t.yaml", []byte(yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one at %s", c.settings, err, c.want)
		}
	}
	if _, err := config.Parse("t.yaml", []byte("policies:\n  threat-protection: "+banSettings+"\n")); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
}

// TestOverHTTP2 checks the body read for inspection over HTTP/2 (h2c), with
// and without an announced length.
func TestOverHTTP2(t *testing.T) {
	be := newBackend(t)
	g := start(t, be, limits, false)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	t.Cleanup(h2c.CloseIdleConnections)
	doc := `{"a": [1, 2, {"b": "\u00e9"}]}`
	for _, c := range []struct {
		doc    string
		length int64
		want   int
	}{
		{doc, int64(len(doc)), 200},
		{doc, -1, 200},
		{nested(5), -1, 400},
		{`{"a":"` + strings.Repeat("x", 3000) + `"}`, -1, 413},
	} {
		req, _ := http.NewRequest("POST", g.URL+"/api", chunked{strings.NewReader(c.doc)})
		req.ContentLength = c.length
		req.Header.Set("Content-Type", "application/json")
		resp, err := h2c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != c.want {
			t.Errorf("length %d: HTTP/%d %d, want %d", c.length, resp.ProtoMajor, resp.StatusCode, c.want)
		}
		if c.want != 200 {
			continue
		}
		if _, got := be.received(); got.contentLength != int64(len(doc)) || !bytes.Equal(got.body, []byte(doc)) {
			t.Errorf("length %d: backend got Content-Length %d, %q", c.length, got.contentLength, got.body)
		}
	}
	if hits, _ := be.received(); hits != 2 {
		t.Errorf("backend hits %d, want 2", hits)
	}
}
