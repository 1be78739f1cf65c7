package acl_test

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
	_ "github.com/tollgate/tollgate/dataplane/policy/acl"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/policytest"
)

func init() { policytest.RegisterConsumerPolicy() }

type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Consumer-Name"), r.Header.Get("X-Consumer-Groups"))
	}))
	t.Cleanup(b.Close)
	return b
}

const consumers = `
consumers:
  - {name: alice, groups: [partners]}
  - {name: bob, groups: [partners, suspended]}
  - {name: carol, groups: [staff]}
  - {name: guest, groups: [visitors]}
`

// configYAML has the route /acl with the acl settings given behind
// test-consumer (authSettings: its settings), and the route /noauth
// with the same acl and no authentication.
func configYAML(backendURL, aclSettings, authSettings string) string {
	return gatewaytest.Server + consumers + fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: guarded
    paths: ["/acl"]
    service: be
    policies:
      test-consumer: %s
      acl: %s
  - name: unauthenticated
    paths: ["/noauth"]
    service: be
    policies:
      acl: %s
`, backendURL, authSettings, aclSettings, aclSettings)
}

type answer struct {
	status int
	code   string
	body   string
}

func call(t *testing.T, url, consumer string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
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
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b)}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error answer is not the gateway's JSON: %q", b)
		}
		a.code = e.Error.Code
	}
	return a
}

func TestGroupsDecide(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, `{allow: [partners]}`, `{}`), nil)
	cases := []struct {
		name, acl, consumer string
		status              int
		code                string
	}{
		{"allowed group", `{allow: [partners, staff]}`, "alice", 200, ""},
		{"other allowed group", `{allow: [partners, staff]}`, "carol", 200, ""},
		{"in no allowed group", `{allow: [partners]}`, "carol", 403, "forbidden"},
		{"deny wins over allow", `{allow: [partners], deny: [suspended]}`, "bob", 403, "forbidden"},
		{"allowed and not denied", `{allow: [partners], deny: [suspended]}`, "alice", 200, ""},
		{"deny only refuses its groups", `{deny: [suspended]}`, "bob", 403, "forbidden"},
		{"deny only lets others through", `{deny: [suspended]}`, "carol", 200, ""},
		{"no consumer: authentication refuses first", `{allow: [partners]}`, "", 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g.Reload(t, configYAML(be.URL, tc.acl, `{}`))
			before := be.hits.Load()
			got := call(t, g.URL+"/acl", tc.consumer)
			if got.status != tc.status || got.code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", got.status, got.code, got.body, tc.status, tc.code)
			}
			reached := be.hits.Load() - before
			if (tc.status == 200) != (reached == 1) {
				t.Errorf("backend reached %d times for a %d", reached, tc.status)
			}
			if tc.status == 200 && !strings.HasPrefix(got.body, tc.consumer+"|") {
				t.Errorf("upstream saw consumer %q, want %s", got.body, tc.consumer)
			}
		})
	}
}

// A route with acl but no authentication has no consumer to judge: it is
// refused, never opened.
func TestWithoutAConsumerTheAnswerIs401(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, `{deny: [suspended]}`, `{}`), nil)
	// Even a client claiming to be a consumer is not one: the engine strips
	// X-Consumer-* and only authentication names consumers.
	req, _ := http.NewRequest("GET", g.URL+"/noauth", nil)
	req.Header.Set("X-Consumer-Name", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), `"code":"unauthorized"`) || !strings.Contains(string(b), "authentication required") {
		t.Errorf("got %d %s, want 401 unauthorized", resp.StatusCode, b)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend reached %d times", n)
	}
}

// The anonymous consumer is a consumer like any other: acl judges its
// groups.
func TestAnonymousConsumerIsJudgedByItsGroups(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(be.URL, `{allow: [partners]}`, `{anonymous: guest}`), nil)
	if got := call(t, g.URL+"/acl", ""); got.status != 403 || got.code != "forbidden" {
		t.Errorf("anonymous outside the allowed groups: %d %q", got.status, got.code)
	}
	g.Reload(t, configYAML(be.URL, `{allow: [partners, visitors]}`, `{anonymous: guest}`))
	if got := call(t, g.URL+"/acl", ""); got.status != 200 || got.body != "guest|visitors" {
		t.Errorf("anonymous in an allowed group: %d %q", got.status, got.body)
	}
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
      acl: {}
  - name: s
    paths: ["/s"]
    service: be
    policies:
      acl:
        allow: [partners, ""]
        deny:
          - partners
  - name: u
    paths: ["/u"]
    service: be
    policies:
      acl: {allow: [a], hide: true}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		"t.yaml:9:7: at least one of allow or deny is required",
		`t.yaml:17:13: group "partners" is both allowed and denied`,
		"t.yaml:15:27: group name must not be empty",
		`t.yaml:22:25: unknown field "hide"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestHideGroupsHeader(t *testing.T) {
	be := newBackend(t)
	for _, tc := range []struct{ settings, want string }{
		{`{allow: [partners]}`, "alice|partners"},
		{`{allow: [partners], hide_groups_header: true}`, "alice|"},
	} {
		g := gatewaytest.Start(t, configYAML(be.URL, tc.settings, `{}`), nil)
		if a := call(t, g.URL+"/acl", "alice"); a.status != 200 || a.body != tc.want {
			t.Errorf("%s: %d %q, want %q upstream", tc.settings, a.status, a.body, tc.want)
		}
	}
}
