package keyauth_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/keyauth"
)

// parseError parses a configuration expected to be refused and returns the
// error text.
func parseError(t *testing.T, yaml string) string {
	t.Helper()
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatalf("configuration accepted:\n%s", yaml)
	}
	return err.Error()
}

// routeWith is a configuration ending with a route's key-auth policy, for
// its settings to follow.
const routeWith = `services:
  - name: echo
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: api
    paths: ["/"]
    service: echo
    policies:
      key-auth:`

func TestSettingsErrorsAreLocated(t *testing.T) {
	for _, tc := range []struct{ settings, want string }{
		{"heder: X-Key", `t.yaml:10:9: unknown field "heder"; did you mean "header"?`},
		{"header: \"\"\n        query: \"\"", `t.yaml:10:9: header and query are both empty`},
		{"header: X Key", `t.yaml:10:9: "X Key" is not a valid header name`},
		{"query: q\n        hide_credentials: \"yes\"", `t.yaml:11:9: expected true or false, got "yes"`},
	} {
		got := parseError(t, routeWith+"\n        "+tc.settings+"\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.settings, got, tc.want)
		}
	}
}

func TestDuplicateKeyRefused(t *testing.T) {
	// The configuration's own validation refuses it, with the place.
	got := parseError(t, routeWith+` {}
consumers:
  - name: alice
    credentials: {key-auth: [{key: same}]}
  - name: bob
    credentials: {key-auth: [{key: same}]}
`)
	if !strings.Contains(got, "t.yaml:14:") || !strings.Contains(got, "already used") {
		t.Errorf("duplicate key: %s", got)
	}

	// Building the policy refuses it too, whatever validated the consumers
	// before, naming both of them (and not the key).
	b := build(config.Consumer{Name: "alice", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: "same"}}}},
		config.Consumer{Name: "bob", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: "other"}, {Key: "same"}}}})
	_, err := policy.Compile(config.Policies{"key-auth": map[string]any{}}, b)
	if err == nil || !strings.Contains(err.Error(), `consumers "alice" and "bob" have the same API key`) || strings.Contains(err.Error(), "same\"") {
		t.Errorf("compile: %v", err)
	}

	// One consumer listing a key twice is not ambiguous.
	b = build(config.Consumer{Name: "alice", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: "k"}, {Key: "k"}}}})
	if _, err := policy.Compile(config.Policies{"key-auth": map[string]any{}}, b); err != nil {
		t.Errorf("a key listed twice for one consumer: %v", err)
	}
}

func TestAnonymousMustExist(t *testing.T) {
	b := build(config.Consumer{Name: "alice"})
	_, err := policy.Compile(config.Policies{"key-auth": map[string]any{"anonymous": "nobody"}}, b)
	if err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("unknown anonymous consumer: %v", err)
	}
}

func build(cs ...config.Consumer) *policy.Build {
	return &policy.Build{Route: "api", Consumers: policy.NewDirectory(cs), Shared: policy.NewShared(), State: policy.NewState()}
}

// keyedConsumers makes n consumers, consumer i with key "key-i".
func keyedConsumers(n int) []config.Consumer {
	cs := make([]config.Consumer, n)
	for i := range cs {
		cs[i] = config.Consumer{Name: fmt.Sprintf("c%d", i), Groups: []string{"g"},
			Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: fmt.Sprintf("key-%d", i)}}}}
	}
	return cs
}

// request is a request for uri with the given header lines, and the
// policy exchange over it.
type request struct {
	ctx             *fasthttp.RequestCtx
	x               *policy.Exchange
	path, query, id []byte
}

var client = netip.MustParseAddr("192.0.2.1")

func newRequest(uri string, header ...string) *request {
	r := &request{ctx: &fasthttp.RequestCtx{}, x: &policy.Exchange{}, path: []byte("/x"), id: []byte("req-1")}
	if _, q, ok := strings.Cut(uri, "?"); ok {
		r.query = []byte(q)
	}
	r.ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(header); i += 2 {
		r.ctx.Request.Header.Add(header[i], header[i+1])
	}
	r.reset()
	return r
}

// reset starts the exchange afresh, as the engine does for each request.
func (r *request) reset() {
	r.x.Reset(r.ctx, "api", "echo", r.path, client, r.id)
	r.x.SetClientQuery(r.query)
}

func exchange(uri string, header ...string) *policy.Exchange { return newRequest(uri, header...).x }

func TestAuthenticateAllocatesNothing(t *testing.T) {
	a, err := keyauth.New(&keyauth.Settings{}, build(keyedConsumers(1000)...))
	if err != nil {
		t.Fatal(err)
	}
	hiding, err := keyauth.New(&keyauth.Settings{HideCredentials: true}, build(keyedConsumers(1000)...))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a    *keyauth.Authenticator
		r    *request
		want string
	}{
		{"header", a, newRequest("/x", "apikey", "key-500"), "c500"},
		{"query", a, newRequest("/x?a=1&apikey=key-7"), "c7"},
		{"wrong", a, newRequest("/x", "apikey", "key-5000"), ""},
		{"none", a, newRequest("/x"), ""},
		{"query hidden", hiding, newRequest("/x?a=1&apikey=key-7&b=2"), "c7"},
	} {
		run := func() {
			tc.r.reset()
			c, _ := tc.a.Authenticate(tc.r.x)
			if c == nil && tc.want != "" || c != nil && c.Name != tc.want {
				t.Fatalf("%s: consumer %v, want %q", tc.name, c, tc.want)
			}
		}
		run() // warm: the exchange's buffers grow once
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Errorf("%s: %v allocations per Authenticate, want 0", tc.name, n)
		}
	}
}

func TestAuthenticateResult(t *testing.T) {
	a, err := keyauth.New(&keyauth.Settings{}, build(keyedConsumers(3)...))
	if err != nil {
		t.Fatal(err)
	}
	x := exchange("/x", "apikey", "key-2")
	c, rej := a.Authenticate(x)
	if c == nil || c.Name != "c2" || rej != nil || x.Credential != "key-auth" {
		t.Errorf("hit: %v %v credential %q", c, rej, x.Credential)
	}
	x = exchange("/x", "apikey", "key-3")
	c, rej = a.Authenticate(x)
	if c != nil || rej == nil || rej.Status != 401 || rej.Code != "invalid_credentials" || x.Credential != "" {
		t.Errorf("miss: %v %+v credential %q", c, rej, x.Credential)
	}
	c, rej = a.Authenticate(exchange("/x"))
	if c != nil || rej != nil {
		t.Errorf("no key: %v %v", c, rej)
	}
}

func TestHideCredentialsEditsTheUpstreamRequest(t *testing.T) {
	a, err := keyauth.New(&keyauth.Settings{HideCredentials: true}, build(keyedConsumers(3)...))
	if err != nil {
		t.Fatal(err)
	}
	r := newRequest("/x?a=1&apikey=key-1&b=2", "apikey", "key-2", "Other", "kept")
	if c, _ := a.Authenticate(r.x); c == nil || c.Name != "c2" {
		t.Fatalf("consumer %v", c)
	}
	if q := string(r.x.RawQuery()); !r.x.QueryEdited() || q != "a=1&b=2" {
		t.Errorf("upstream query %q", q)
	}
	if v := r.x.Header("apikey"); len(v) != 0 || string(r.x.Header("Other")) != "kept" {
		t.Errorf("upstream apikey %q, Other %q", v, r.x.Header("Other"))
	}
	// Without the parameter, the query is left alone.
	r = newRequest("/x?a=1", "apikey", "key-2")
	a.Authenticate(r.x)
	if r.x.QueryEdited() {
		t.Errorf("query edited to %q", r.x.RawQuery())
	}
}

func BenchmarkKeyAuth(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("consumers=%d", n), func(b *testing.B) {
			a, err := keyauth.New(&keyauth.Settings{}, build(keyedConsumers(n)...))
			if err != nil {
				b.Fatal(err)
			}
			x := exchange("/x", "apikey", fmt.Sprintf("key-%d", n/2))
			b.ReportAllocs()
			for b.Loop() {
				if c, _ := a.Authenticate(x); c == nil {
					b.Fatal("key not accepted")
				}
			}
		})
	}
}
