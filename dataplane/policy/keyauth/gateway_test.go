package keyauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/internal/gatewaytest"

	_ "github.com/tollgate/tollgate/dataplane/policy/basicauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth"
)

// echoed is what the backend saw of a request.
type echoed struct {
	Header http.Header `json:"header"`
	Query  url.Values  `json:"query"`
}

// echoBackend answers every request with the headers and query parameters it
// received, among them X-Consumer-Name and X-Consumer-Groups.
func echoBackend(t *testing.T) string {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Header: r.Header, Query: r.URL.Query()}) //nolint:errcheck // the test reads it
	}))
	t.Cleanup(be.Close)
	return be.URL
}

// consumers has alice (two groups) with a key and a password (hashed at
// the lowest bcrypt cost, for quick tests), bob with a key, and guest
// without credentials.
var consumers = `
consumers:
  - name: alice
    groups: [partners, staff]
    credentials:
      key-auth: [{key: alice-key}]
      basic-auth: [{username: alice, password: "` + mustBcrypt("wonderland") + `"}]
  - name: bob
    credentials:
      key-auth: [{key: bob-key}, {key: bob-second-key}]
  - name: guest
  - name: carol
    credentials:
      key-auth: [{sha256: "` + sha256Hex("carol-key") + `"}]
`

func sha256Hex(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func mustBcrypt(password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

// start runs a gateway with one route "/" to an echo backend, the route's
// policies given as a YAML flow mapping.
func start(t *testing.T, policies string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: echo
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: echo
    policies: %s
`, echoBackend(t), policies)+consumers, nil)
}

type answer struct {
	protoMajor int
	status     int
	header     http.Header
	body       []byte
}

// echo decodes the backend's echo from a proxied answer.
func (a answer) echo(t *testing.T) echoed {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	var e echoed
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("backend echo %q: %v", a.body, err)
	}
	return e
}

// errorCode is the code of a gateway JSON error.
func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Status  int    `json:"status"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("gateway error %q: %v", a.body, err)
	}
	if e.Error.Status != a.status {
		t.Errorf("error body status %d on a %d answer", e.Error.Status, a.status)
	}
	return e.Error.Code
}

func get(t *testing.T, client *http.Client, target string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{protoMajor: resp.ProtoMajor, status: resp.StatusCode, header: resp.Header, body: body}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func wantConsumer(t *testing.T, a answer, name, groups string) echoed {
	t.Helper()
	e := a.echo(t)
	if got := e.Header.Get("X-Consumer-Name"); got != name {
		t.Errorf("upstream X-Consumer-Name %q, want %q", got, name)
	}
	if got := e.Header.Get("X-Consumer-Groups"); got != groups {
		t.Errorf("upstream X-Consumer-Groups %q, want %q", got, groups)
	}
	return e
}

func wantRefused(t *testing.T, a answer, code string) {
	t.Helper()
	if a.status != 401 {
		t.Fatalf("status %d, want 401: %s", a.status, a.body)
	}
	if got := a.errorCode(t); got != code {
		t.Errorf("error code %q, want %q", got, code)
	}
}

func TestKeyInHeader(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "alice", "partners, staff")
	// Every key of a consumer works.
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "bob-second-key"), "bob", "")
	// Header names are case-insensitive.
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "APIKEY", "bob-key"), "bob", "")
}

// A key known only by its SHA-256 (as the admin API keeps the keys it
// creates) authenticates like any other.
func TestKeyGivenAsSHA256(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "carol-key"), "carol", "")
	if a := get(t, http.DefaultClient, g.URL+"/x", "apikey", sha256Hex("carol-key")); a.status != 401 {
		t.Errorf("the hash itself as a key: %d, want 401", a.status)
	}
}

func TestKeyInQuery(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	e := wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x?apikey=bob-key&other=1"), "bob", "")
	if e.Query.Get("other") != "1" {
		t.Errorf("other query parameters lost: %v", e.Query)
	}
	// The header is read first: a wrong header key is not rescued by the query.
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x?apikey=bob-key", "apikey", "nope"), "invalid_credentials")
}

func TestCustomSourceNames(t *testing.T) {
	g := start(t, `{key-auth: {header: X-Api-Token, query: token}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "X-Api-Token", "alice-key"), "alice", "partners, staff")
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x?token=bob-key"), "bob", "")
	// The default names mean nothing any more.
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x?apikey=bob-key", "apikey", "alice-key"), "unauthorized")
}

func TestSourceSwitchedOff(t *testing.T) {
	g := start(t, `{key-auth: {query: ""}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "alice", "partners, staff")
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x?apikey=alice-key"), "unauthorized")

	g = start(t, `{key-auth: {header: ""}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x?apikey=alice-key"), "alice", "partners, staff")
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "unauthorized")
}

func TestMissingKey(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	for _, a := range []answer{
		get(t, http.DefaultClient, g.URL+"/x"),
		get(t, http.DefaultClient, g.URL+"/x", "apikey", ""),
		get(t, http.DefaultClient, g.URL+"/x?apikey="),
	} {
		wantRefused(t, a, "unauthorized")
	}
}

func TestWrongKey(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	for _, a := range []answer{
		get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-ke"), // a prefix of a real key
		get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key2"),
		get(t, http.DefaultClient, g.URL+"/x?apikey=unknown"),
	} {
		wantRefused(t, a, "invalid_credentials")
		if got := a.header.Get("WWW-Authenticate"); got != `Key realm="tollgate"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
		if !strings.Contains(string(a.body), `"invalid API key"`) {
			t.Errorf("body %s", a.body)
		}
	}
}

func TestClientCannotPoseAsConsumer(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	a := get(t, http.DefaultClient, g.URL+"/x", "apikey", "bob-key",
		"X-Consumer-Name", "alice", "X-Consumer-Groups", "admins", "X-Consumer-Id", "1",
		"X-Authenticated-User", "alice")
	e := wantConsumer(t, a, "bob", "")
	for _, h := range []string{"X-Consumer-Id", "X-Authenticated-User"} {
		if v := e.Header.Values(h); len(v) != 0 {
			t.Errorf("client-sent %s reached the upstream: %q", h, v)
		}
	}
	if v := e.Header.Values("X-Consumer-Name"); len(v) != 1 {
		t.Errorf("upstream got X-Consumer-Name %q, want only bob", v)
	}
}

func TestHideCredentials(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	e := wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "alice", "partners, staff")
	if got := e.Header.Get("apikey"); got != "alice-key" {
		t.Errorf("without hide_credentials the upstream got apikey %q", got)
	}

	g = start(t, `{key-auth: {hide_credentials: true}}`)
	e = wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key", "Other", "kept"), "alice", "partners, staff")
	if v := e.Header.Values("apikey"); len(v) != 0 {
		t.Errorf("hide_credentials: the upstream got apikey %q", v)
	}
	if e.Header.Get("Other") != "kept" {
		t.Errorf("hide_credentials removed other headers: %v", e.Header)
	}
	e = wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x?a=1&apikey=bob-key&b=%20two"), "bob", "")
	if _, ok := e.Query["apikey"]; ok || e.Query.Get("a") != "1" || e.Query.Get("b") != " two" {
		t.Errorf("hide_credentials: the upstream got the query %v", e.Query)
	}
	// Percent-encoded, the name is still the key's.
	e = wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x?api%6Bey=bob-key"), "bob", "")
	if len(e.Query) != 0 {
		t.Errorf("hide_credentials: the upstream got the query %v", e.Query)
	}
}

func TestAnonymous(t *testing.T) {
	g := start(t, `{key-auth: {anonymous: guest}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "alice", "partners, staff")
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x"), "guest", "")
	a := get(t, http.DefaultClient, g.URL+"/x", "apikey", "wrong")
	wantConsumer(t, a, "guest", "")
	if got := a.header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("anonymous answer carries a challenge: %q", got)
	}
}

func TestKeyAuthOrBasicAuth(t *testing.T) {
	g := start(t, `{key-auth: {}, basic-auth: {}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "bob-key"), "bob", "")
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "Authorization", basic("alice", "wonderland")), "alice", "partners, staff")
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x"), "unauthorized")
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "wrong"), "invalid_credentials")
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x", "Authorization", basic("alice", "wrong")), "invalid_credentials")
}

func TestGlobalPolicySwitchedOffOnRoute(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: echo
    targets: [{url: %q}]
routes:
  - name: private
    paths: ["/private"]
    service: echo
  - name: public
    paths: ["/public"]
    service: echo
    policies: {key-auth: null}
policies:
  key-auth: {}
`, echoBackend(t))+consumers, nil)
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/private"), "unauthorized")
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/private", "apikey", "alice-key"), "alice", "partners, staff")
	// No authentication on the public route: no consumer, and a client's
	// own X-Consumer-Name does not get through either.
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/public", "X-Consumer-Name", "alice"), "", "")
	// A key sent there anyway is just forwarded.
	e := wantConsumer(t, get(t, http.DefaultClient, g.URL+"/public", "apikey", "wrong"), "", "")
	if e.Header.Get("apikey") != "wrong" {
		t.Errorf("apikey %q", e.Header.Get("apikey"))
	}
}

func TestReloadChangesKeys(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "alice", "partners, staff")
	be := echoBackend(t)
	g.Reload(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: echo
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: echo
    policies: {key-auth: {}}
consumers:
  - name: alice
    credentials:
      key-auth: [{key: alice-new-key}]
`, be))
	wantRefused(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-key"), "invalid_credentials")
	wantConsumer(t, get(t, http.DefaultClient, g.URL+"/x", "apikey", "alice-new-key"), "alice", "")
}

func TestHTTP2PriorKnowledge(t *testing.T) {
	g := start(t, `{key-auth: {}}`)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: &protocols}
	t.Cleanup(transport.CloseIdleConnections)
	h2c := &http.Client{Transport: transport}

	a := get(t, h2c, g.URL+"/x", "apikey", "alice-key", "X-Consumer-Name", "bob")
	if a.protoMajor != 2 {
		t.Fatalf("answered over HTTP/%d, want HTTP/2", a.protoMajor)
	}
	wantConsumer(t, a, "alice", "partners, staff")
	wantConsumer(t, get(t, h2c, g.URL+"/x?apikey=bob-key"), "bob", "")
	a = get(t, h2c, g.URL+"/x", "apikey", "wrong")
	wantRefused(t, a, "invalid_credentials")
	if got := a.header.Get("WWW-Authenticate"); got != `Key realm="tollgate"` {
		t.Errorf("WWW-Authenticate over HTTP/2: %q", got)
	}
	wantRefused(t, get(t, h2c, g.URL+"/x"), "unauthorized")
}
