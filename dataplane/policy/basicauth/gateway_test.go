package basicauth_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/internal/gatewaytest"

	_ "github.com/tollgate/tollgate/dataplane/policy/basicauth"
)

// echoBackend answers every request with the request headers it received
// (as JSON), among them X-Consumer-Name and X-Consumer-Groups.
func echoBackend(t *testing.T) string {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header) //nolint:errcheck // the test reads it
	}))
	t.Cleanup(be.Close)
	return be.URL
}

// bcryptOf hashes password at the lowest cost, for quick tests.
func bcryptOf(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// argon2idOf hashes password with small parameters, as a PHC string.
func argon2idOf(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
}

// consumersYAML has alice (password in the clear), bob (bcrypt hash), carol
// (argon2id hash) and guest (no credentials).
func consumersYAML(t testing.TB, alicePassword string) string {
	return fmt.Sprintf(`
consumers:
  - name: alice
    groups: [partners, staff]
    credentials:
      basic-auth: [{username: alice, password: %q}]
  - name: bob
    credentials:
      basic-auth: [{username: bob, password: %q}]
  - name: carol
    credentials:
      basic-auth: [{username: carol, password: %q}]
  - name: guest
`, alicePassword, bcryptOf(t, "builder"), argon2idOf("café ☕"))
}

func gatewayYAML(t *testing.T, policies, alicePassword string) string {
	return gatewaytest.Server + fmt.Sprintf(`
services:
  - name: echo
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: echo
    policies: %s
`, echoBackend(t), policies) + consumersYAML(t, alicePassword)
}

// start runs a gateway with one route "/" to an echo backend, the route's
// policies given as a YAML flow mapping. Alice's password is configured as
// a cheap hash: hashing it in the clear is tested on its own.
func start(t *testing.T, policies string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewayYAML(t, policies, bcryptOf(t, "wonderland")), nil)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(t *testing.T, target string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
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
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// upstream returns the request headers the backend saw.
func (a answer) upstream(t *testing.T) http.Header {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	var h http.Header
	if err := json.Unmarshal(a.body, &h); err != nil {
		t.Fatalf("backend echo %q: %v", a.body, err)
	}
	return h
}

func wantConsumer(t *testing.T, a answer, name string) http.Header {
	t.Helper()
	h := a.upstream(t)
	if got := h.Get("X-Consumer-Name"); got != name {
		t.Errorf("upstream X-Consumer-Name %q, want %q", got, name)
	}
	return h
}

type gatewayError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func wantRefused(t *testing.T, a answer, code string) gatewayError {
	t.Helper()
	if a.status != 401 {
		t.Fatalf("status %d, want 401: %s", a.status, a.body)
	}
	var e struct {
		Error gatewayError `json:"error"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("gateway error %q: %v", a.body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code %q, want %q (%s)", e.Error.Code, code, a.body)
	}
	return e.Error
}

const wantChallenge = `Basic realm="tollgate", charset="UTF-8"`

func TestGoodCredentials(t *testing.T) {
	// Alice's password in the clear, hashed by the gateway.
	g := gatewaytest.Start(t, gatewayYAML(t, `{basic-auth: {}}`, "wonderland"), nil)
	h := wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("alice", "wonderland")), "alice")
	if got := h.Get("X-Consumer-Groups"); got != "partners, staff" {
		t.Errorf("X-Consumer-Groups %q", got)
	}
	if h.Get("Authorization") == "" {
		t.Error("Authorization removed without hide_credentials")
	}
	// Again, now from the memory of successful checks.
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("alice", "wonderland")), "alice")
	// A bcrypt hash and an argon2id hash in the configuration; a UTF-8
	// password; the scheme in any case; a colon in the password.
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("bob", "builder")), "bob")
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("carol", "café ☕")), "carol")
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", "bAsIc "+base64.StdEncoding.EncodeToString([]byte("bob:builder"))), "bob")
	// The client's own X-Consumer-* headers do not get through.
	h = wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("bob", "builder"), "X-Consumer-Name", "alice", "X-Consumer-Groups", "admins"), "bob")
	if v := h.Values("X-Consumer-Name"); len(v) != 1 {
		t.Errorf("upstream X-Consumer-Name %q, want only bob", v)
	}
	for _, v := range h.Values("X-Consumer-Groups") {
		if v == "admins" {
			t.Errorf("the client's X-Consumer-Groups reached the upstream")
		}
	}
}

func TestColonInPassword(t *testing.T) {
	g := gatewaytest.Start(t, gatewayYAML(t, `{basic-auth: {}}`, bcryptOf(t, "a:b:c")), nil)
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("alice", "a:b:c")), "alice")
	wantRefused(t, get(t, g.URL+"/x", "Authorization", basic("alice", "a")), "invalid_credentials")
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	g := start(t, `{basic-auth: {}}`)
	var answers []gatewayError
	for _, creds := range [][2]string{
		{"alice", "wonderlan"}, {"alice", "Wonderland"}, {"bob", "wonderland"}, {"carol", "cafe"},
		{"mallory", "wonderland"}, {"Alice", "wonderland"},
	} {
		a := get(t, g.URL+"/x", "Authorization", basic(creds[0], creds[1]))
		answers = append(answers, wantRefused(t, a, "invalid_credentials"))
		if got := a.header.Get("WWW-Authenticate"); got != wantChallenge {
			t.Errorf("%v: WWW-Authenticate %q", creds, got)
		}
	}
	// A wrong password and an unknown user get the very same answer.
	for _, e := range answers {
		if e != answers[0] {
			t.Errorf("answers differ: %+v and %+v", e, answers[0])
		}
	}
}

func TestMissingCredentials(t *testing.T) {
	g := start(t, `{basic-auth: {}}`)
	wantRefused(t, get(t, g.URL+"/x"), "unauthorized")
	// Another scheme is some other policy's business.
	wantRefused(t, get(t, g.URL+"/x", "Authorization", "Bearer abc.def.ghi"), "unauthorized")
	wantRefused(t, get(t, g.URL+"/x", "Authorization", "Basically "+base64.StdEncoding.EncodeToString([]byte("bob:builder"))), "unauthorized")
}

func TestMalformedAuthorization(t *testing.T) {
	g := start(t, `{basic-auth: {}}`)
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct{ name, value string }{
		{"scheme alone", "Basic"},
		{"two spaces", "Basic  " + b64([]byte("bob:builder"))},
		{"tab", "Basic\t" + b64([]byte("bob:builder"))},
		{"not base64", "Basic !!!!"},
		{"url alphabet", "Basic " + base64.URLEncoding.EncodeToString([]byte("bob:builder>>>??"))},
		{"missing padding", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("bob:builder"))},
		{"space inside", "Basic Ym9i OmJ1aWxkZXI="},
		{"no colon", "Basic " + b64([]byte("bob"))},
		{"empty user", "Basic " + b64([]byte(":builder"))},
		{"nothing", "Basic " + b64(nil) + "===="},
		{"control character", "Basic " + b64([]byte("bob:build\x00er"))},
		{"DEL", "Basic " + b64([]byte("bob:build\x7fer"))},
		{"invalid UTF-8", "Basic " + b64([]byte("bob:\xff\xfe"))},
		{"too long", "Basic " + b64([]byte("bob:"+strings.Repeat("x", 2000)))},
	} {
		a := get(t, g.URL+"/x", "Authorization", tc.value)
		if a.status != 401 {
			t.Errorf("%s: status %d: %s", tc.name, a.status, a.body)
			continue
		}
		if e := wantRefused(t, a, "invalid_credentials"); e.Message != "malformed Basic credentials" {
			t.Errorf("%s: message %q", tc.name, e.Message)
		}
		if got := a.header.Get("WWW-Authenticate"); got != wantChallenge {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
		}
	}
}

func TestHideCredentials(t *testing.T) {
	g := start(t, `{basic-auth: {hide_credentials: true}}`)
	h := wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("bob", "builder"), "Other", "kept"), "bob")
	if v := h.Values("Authorization"); len(v) != 0 {
		t.Errorf("hide_credentials: the upstream got Authorization %q", v)
	}
	if h.Get("Other") != "kept" {
		t.Errorf("other headers lost: %v", h)
	}
}

func TestAnonymous(t *testing.T) {
	g := start(t, `{basic-auth: {anonymous: guest}}`)
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("bob", "builder")), "bob")
	wantConsumer(t, get(t, g.URL+"/x"), "guest")
	a := get(t, g.URL+"/x", "Authorization", basic("bob", "wrong"))
	wantConsumer(t, a, "guest")
	if got := a.header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("anonymous answer carries a challenge: %q", got)
	}
}

func TestPasswordChangeTakesEffectOnReload(t *testing.T) {
	g := start(t, `{basic-auth: {}}`)
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("alice", "wonderland")), "alice")
	g.Reload(t, gatewayYAML(t, `{basic-auth: {}}`, bcryptOf(t, "looking-glass")))
	// The old password was remembered as good by the old snapshot only.
	wantRefused(t, get(t, g.URL+"/x", "Authorization", basic("alice", "wonderland")), "invalid_credentials")
	wantConsumer(t, get(t, g.URL+"/x", "Authorization", basic("alice", "looking-glass")), "alice")
}
