package policy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/valyala/fasthttp"
)

// Test policies, one per phase, named so that sorting by name alone would
// run them in the wrong order.
func init() {
	Register("a-test-limit", Limit, func(s *struct{}, b *Build) (any, error) {
		return handlerFunc(func(x *Exchange) *Reject {
			x.SetRequestHeader("X-Order", string(x.Header("X-Order"))+"limit,")
			return nil
		}), nil
	})
	Register("z-test-identify", Identify, func(s *struct {
		Block string `yaml:"block"`
	}, b *Build) (any, error) {
		return handlerFunc(func(x *Exchange) *Reject {
			x.SetRequestHeader("X-Order", string(x.Header("X-Order"))+"identify,")
			if s.Block != "" && string(x.Header("X-Block")) == s.Block {
				x.SetAnswerHeader("X-Blocked", "yes")
				return &Reject{Status: 403, Code: "blocked", Message: "blocked"}
			}
			return nil
		}), nil
	})
	Register("test-header-auth", Authenticate, newHeaderAuth)
	Register("test-other-auth", Authenticate, newHeaderAuth)
	Register("test-strict", Protect, func(s *strictSettings, b *Build) (any, error) {
		return handlerFunc(func(*Exchange) *Reject { return nil }), nil
	})
}

type strictSettings struct {
	Limit int `yaml:"limit"`
}

func (s *strictSettings) Validate() []config.FieldError {
	if s.Limit < 1 {
		return []config.FieldError{{Path: "limit", Msg: "limit must be at least 1"}}
	}
	return nil
}

type handlerFunc func(*Exchange) *Reject

func (f handlerFunc) Handle(x *Exchange) *Reject { return f(x) }

// headerAuth accepts the consumer its header names, refuses an unknown one,
// and counts the failures it is told about.
type headerAuth struct {
	AuthSettings
	header    string
	consumers *Directory
	failures  *int
}

type headerAuthSettings struct {
	AuthSettings `yaml:",inline"`
	Header       string `yaml:"header"`
}

var authFailures int

func newHeaderAuth(s *headerAuthSettings, b *Build) (any, error) {
	return &headerAuth{AuthSettings: s.AuthSettings, header: s.Header, consumers: b.Consumers, failures: &authFailures}, nil
}

func (a *headerAuth) Authenticate(x *Exchange) (*Consumer, *Reject) {
	v := x.Header(a.header)
	if len(v) == 0 {
		return nil, nil
	}
	if c, ok := a.consumers.Get(string(v)); ok {
		return c, nil
	}
	return nil, &Reject{Status: 401, Code: "invalid_credentials", Message: a.header + " refused"}
}

func (a *headerAuth) AuthFailed(*Exchange) { *a.failures++ }

func testBuild() *Build {
	return &Build{
		Route:  "r",
		Shared: NewShared(), State: NewState(),
		Consumers: NewDirectory([]config.Consumer{{Name: "alice", Groups: []string{"staff", "ops"}}, {Name: "guest"}}),
	}
}

func newExchange(headers map[string]string) (*Exchange, *fasthttp.RequestCtx) {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI("/p")
	for k, v := range headers {
		ctx.Request.Header.Set(k, v)
	}
	x := &Exchange{}
	x.Reset(ctx, "r", "s", []byte("/p"), netip.MustParseAddr("192.0.2.1"), []byte("rid"))
	return x, ctx
}

func mustCompile(t *testing.T, ps config.Policies) *Chain {
	t.Helper()
	c, err := Compile(ps, testBuild())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMergeNarrowerScopeWinsAndNullSwitchesOff(t *testing.T) {
	global := config.Policies{"cors": map[string]any{"origins": []any{"*"}}, "key-auth": map[string]any{}}
	service := config.Policies{"rate-limit": map[string]any{"limit": 1}, "cors": map[string]any{"origins": []any{"https://a"}}}
	route := config.Policies{"key-auth": nil, "rate-limit": map[string]any{"limit": 2}}
	got := Merge(global, service, route)
	want := config.Policies{"cors": map[string]any{"origins": []any{"https://a"}}, "rate-limit": map[string]any{"limit": 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	if global["key-auth"] == nil || len(global) != 2 {
		t.Error("Merge changed its input")
	}
	if c := mustCompile(t, Merge(config.Policies{}, nil, nil)); c != nil {
		t.Error("an empty policy set compiles to a chain; want nil so the route pays nothing")
	}
}

func TestPhasesDecideTheOrderNotNames(t *testing.T) {
	c := mustCompile(t, config.Policies{"a-test-limit": map[string]any{}, "z-test-identify": map[string]any{}, "test-header-auth": map[string]any{"header": "X-User"}})
	if got, want := c.Names(), []string{"z-test-identify", "test-header-auth", "a-test-limit"}; !reflect.DeepEqual(got, want) {
		t.Errorf("run order %v, want %v", got, want)
	}
	x, ctx := newExchange(map[string]string{"X-User": "alice"})
	if r := c.Run(x); r != nil {
		t.Fatalf("rejected: %v", r)
	}
	if got := string(ctx.Request.Header.Peek("X-Order")); got != "identify,limit," {
		t.Errorf("handlers ran as %q", got)
	}
	if x.Consumer == nil || x.Consumer.Name != "alice" || string(x.Consumer.HeaderGroups()) != "staff, ops" {
		t.Errorf("consumer %+v", x.Consumer)
	}
}

func TestAnyAuthenticationPolicyMayAccept(t *testing.T) {
	c := mustCompile(t, config.Policies{
		"test-header-auth": map[string]any{"header": "X-A"},
		"test-other-auth":  map[string]any{"header": "X-B"},
	})
	for _, tc := range []struct {
		name     string
		headers  map[string]string
		consumer string
		code     string
		failures int
	}{
		{"first accepts", map[string]string{"X-A": "alice"}, "alice", "", 0},
		{"second accepts", map[string]string{"X-B": "guest"}, "guest", "", 0},
		{"one refuses, the other accepts", map[string]string{"X-A": "mallory", "X-B": "alice"}, "alice", "", 0},
		{"no credential", nil, "", "unauthorized", 0},
		{"wrong credential says why", map[string]string{"X-B": "mallory"}, "", "invalid_credentials", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authFailures = 0
			x, _ := newExchange(tc.headers)
			r := c.Run(x)
			if tc.code != "" {
				if r == nil || r.Code != tc.code || r.Status != 401 {
					t.Fatalf("reject %+v, want 401 %s", r, tc.code)
				}
			} else if r != nil || x.Consumer == nil || x.Consumer.Name != tc.consumer {
				t.Fatalf("reject %+v consumer %+v, want %s", r, x.Consumer, tc.consumer)
			}
			// Both authenticators observe failures: each is told once.
			if authFailures != tc.failures {
				t.Errorf("failure observers called %d times, want %d", authFailures, tc.failures)
			}
		})
	}
}

func TestAnonymousConsumer(t *testing.T) {
	c := mustCompile(t, config.Policies{"test-header-auth": map[string]any{"header": "X-A", "anonymous": "guest"}})
	for _, h := range []map[string]string{nil, {"X-A": "mallory"}} {
		x, _ := newExchange(h)
		if r := c.Run(x); r != nil || x.Consumer == nil || x.Consumer.Name != "guest" || x.Credential != "anonymous" {
			t.Errorf("headers %v: reject %v consumer %+v, want the anonymous guest", h, r, x.Consumer)
		}
	}
	_, err := Compile(config.Policies{"test-header-auth": map[string]any{"anonymous": "nobody"}}, testBuild())
	if err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("unknown anonymous consumer: err %v", err)
	}
}

func TestRejectKeepsAnswerHeadersForTheResponsePhase(t *testing.T) {
	c := mustCompile(t, config.Policies{"z-test-identify": map[string]any{"block": "1"}})
	x, ctx := newExchange(map[string]string{"X-Block": "1"})
	r := c.Run(x)
	if r == nil || r.Status != 403 {
		t.Fatalf("reject %+v", r)
	}
	ctx.Response.SetStatusCode(403)
	c.Respond(x)
	if got := string(ctx.Response.Header.Peek("X-Blocked")); got != "yes" {
		t.Errorf("X-Blocked = %q after Respond", got)
	}
	// The next request on a recycled exchange starts with no answer headers.
	ctx2 := &fasthttp.RequestCtx{}
	x.Reset(ctx2, "r", "s", []byte("/"), netip.Addr{}, nil)
	c.Respond(x)
	if v := ctx2.Response.Header.Peek("X-Blocked"); v != nil {
		t.Errorf("answer header leaked into the next request: %q", v)
	}
}

func TestUnknownPolicyAndBadSettingsAreBuildErrors(t *testing.T) {
	if _, err := Compile(config.Policies{"no-such": map[string]any{}}, testBuild()); err == nil {
		t.Error("unknown policy compiled")
	}
	if _, err := Compile(config.Policies{"test-strict": map[string]any{"limit": 0}}, testBuild()); err == nil {
		t.Error("invalid settings compiled")
	}
}

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: s
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: [/]
    service: s
    policies:
      test-strict:
        limit: 0
      test-header-auth: {headr: X-A}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("invalid settings accepted")
	}
	for _, want := range []string{"t.yaml:10:9: ", "limit must be at least 1", "t.yaml:11:26: ", `did you mean "header"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

type closer struct{ closed *int }

func (c closer) Close() error { *c.closed++; return nil }

func TestStateSurvivesReloadsUntilNoLongerAskedFor(t *testing.T) {
	s := NewState()
	closed := 0
	mk := func() any { return closer{&closed} }
	s.Begin()
	a := s.Get("route-a", mk)
	s.Get("route-b", mk)
	s.Sweep()
	s.Begin() // the next snapshot only asks for route-a
	if s.Get("route-a", func() any { t.Fatal("route-a recreated"); return nil }) != a {
		t.Error("route-a state not kept")
	}
	s.Sweep()
	if closed != 1 {
		t.Errorf("%d closed after the sweep, want route-b's", closed)
	}
	s.Close()
	if closed != 2 {
		t.Errorf("%d closed after Close, want 2", closed)
	}
}

type challengingAuth struct{ headerAuth }

func (challengingAuth) Challenge() string { return `Test realm="t"` }

func init() {
	Register("test-challenging-auth", Authenticate, func(s *headerAuthSettings, b *Build) (any, error) {
		a, _ := newHeaderAuth(s, b)
		return &challengingAuth{*a.(*headerAuth)}, nil
	})
}

func TestMissingCredentialGetsEveryChallenge(t *testing.T) {
	c := mustCompile(t, config.Policies{
		"test-challenging-auth": map[string]any{"header": "X-A"},
		"test-header-auth":      map[string]any{"header": "X-B"},
	})
	x, ctx := newExchange(nil)
	if r := c.Run(x); r != Unauthorized {
		t.Fatalf("reject %+v", r)
	}
	c.Respond(x)
	if got := string(ctx.Response.Header.Peek("WWW-Authenticate")); got != `Test realm="t"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	// Settings that embed AuthSettings name the anonymous consumer even
	// when the instance does not say so itself.
	c = mustCompile(t, config.Policies{"test-challenging-auth": map[string]any{"header": "X-A", "anonymous": "guest"}})
	x, _ = newExchange(nil)
	if r := c.Run(x); r != nil || x.Consumer == nil || x.Consumer.Name != "guest" {
		t.Errorf("anonymous from settings: %v %+v", r, x.Consumer)
	}
}
