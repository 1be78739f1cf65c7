package engine

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Policies registered for the engine's tests: an authenticator that takes
// the consumer from X-Test-User, a limiter that stamps every answer and
// refuses when asked to, and a finisher that counts exchanges.
var finished atomic.Int64

func init() {
	policy.Register("test-user-auth", policy.Authenticate, func(s *policy.AuthSettings, b *policy.Build) (any, error) {
		return userAuth{b.Consumers}, nil
	})
	policy.Register("test-stamp", policy.Limit, func(s *struct {
		Preflight bool `yaml:"preflight"`
	}, b *policy.Build) (any, error) {
		return stamp{preflight: s.Preflight}, nil
	})
}

type userAuth struct{ consumers *policy.Directory }

func (a userAuth) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	if c, ok := a.consumers.Get(string(x.Header("X-Test-User"))); ok {
		return c, nil
	}
	return nil, nil
}

type stamp struct{ preflight bool }

var errStamped = &policy.Reject{Status: 429, Code: "rate_limited", Message: "stamped"}

func (s stamp) Handle(x *policy.Exchange) *policy.Reject {
	x.SetAnswerHeader("X-Stamp", x.Route())
	switch {
	case s.preflight && string(x.Method()) == "OPTIONS":
		return &policy.Reject{Status: 204} // no code: an answer without a body
	case string(x.Header("X-Refuse")) == "1":
		return errStamped
	}
	return nil
}

func (stamp) Respond(x *policy.Exchange) {
	x.SetResponseHeader("X-Upstream-Status-Seen", http.StatusText(x.ResponseStatus()))
}

func (stamp) Finish(*policy.Exchange) { finished.Add(1) }

func policyGateway(t *testing.T, backend string, mock bool) *gateway {
	route := config.Route{Name: "r", Paths: []string{"/"}, Policies: config.Policies{
		"test-user-auth": map[string]any{}, "test-stamp": map[string]any{"preflight": true},
	}}
	cfg := oneRoute(route, backend)
	if mock {
		cfg.Routes[0].Service, cfg.Routes[0].Mock = "", &config.Mock{Status: 200, Body: "mocked"}
	}
	cfg.Consumers = []config.Consumer{{Name: "alice", Groups: []string{"a", "b"}}}
	return startGateway(t, cfg)
}

func TestPoliciesRunBeforeForwardingAndSendTheConsumer(t *testing.T) {
	be := echoBackend(t)
	g := policyGateway(t, be.URL, false)
	before := finished.Load()

	req, _ := http.NewRequest("GET", g.url+"/x", nil)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("X-Consumer-Name", "root") // a client may not say who it is
	req.Header.Set("X-Authenticated-Userid", "root")
	resp, e := getEcho(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.Header["X-Consumer-Name"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("X-Consumer-Name upstream = %v, want [alice]", got)
	}
	if got := e.Header["X-Consumer-Groups"]; len(got) != 1 || got[0] != "a, b" {
		t.Errorf("X-Consumer-Groups upstream = %v", got)
	}
	if _, ok := e.Header["X-Authenticated-Userid"]; ok {
		t.Error("client's X-Authenticated-Userid reached the upstream")
	}
	if resp.Header.Get("X-Stamp") != "r" || resp.Header.Get("X-Upstream-Status-Seen") != "OK" {
		t.Errorf("response phase headers: %v", resp.Header)
	}
	if n := finished.Load() - before; n != 1 {
		t.Errorf("finishers called %d times, want 1", n)
	}
}

func TestPolicyRejectIsTheGatewaysErrorWithAnswerHeaders(t *testing.T) {
	be := echoBackend(t)
	var hits atomic.Int64
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	g := policyGateway(t, be.URL, false)

	// No consumer: the chain's 401.
	resp, err := http.Get(g.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	ge := decodeError(t, resp)
	if resp.StatusCode != 401 || ge.Error.Code != "unauthorized" || ge.Error.RequestID == "" {
		t.Errorf("without a consumer: %d %+v", resp.StatusCode, ge)
	}

	req, _ := http.NewRequest("GET", g.url+"/x", nil)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("X-Refuse", "1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ge = decodeError(t, resp)
	if resp.StatusCode != 429 || ge.Error.Code != "rate_limited" || resp.Header.Get("X-Stamp") != "r" {
		t.Errorf("refused: %d %+v stamp %q", resp.StatusCode, ge, resp.Header.Get("X-Stamp"))
	}

	req, _ = http.NewRequest("OPTIONS", g.url+"/x", nil)
	req.Header.Set("X-Test-User", "alice")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 || len(body) != 0 || resp.Header.Get("X-Stamp") != "r" {
		t.Errorf("bodiless answer: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if hits.Load() != 0 {
		t.Errorf("the upstream was called %d times for refused requests", hits.Load())
	}
}

func TestPoliciesRunOnMockRoutes(t *testing.T) {
	g := policyGateway(t, "http://127.0.0.1:1", true)
	resp, err := http.Get(g.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("mock route without consumer: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", g.url+"/x", nil)
	req.Header.Set("X-Test-User", "alice")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "mocked" || resp.Header.Get("X-Stamp") != "r" {
		t.Errorf("mock with consumer: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestRouteWithoutPoliciesStillStripsIdentityHeaders(t *testing.T) {
	be := echoBackend(t)
	g := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	req, _ := http.NewRequest("GET", g.url+"/", nil)
	req.Header.Set("X-Consumer-Name", "root")
	_, e := getEcho(t, req)
	for k := range e.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-consumer-") {
			t.Errorf("%s reached the upstream", k)
		}
	}
}
