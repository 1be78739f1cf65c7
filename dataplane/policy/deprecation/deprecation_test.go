package deprecation_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/deprecation"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// test-token-auth refuses every request without "X-Token: ok".
func init() {
	policy.Register("test-token-auth", policy.Authenticate, func(_ *policy.AuthSettings, b *policy.Build) (any, error) {
		return tokenAuth{}, nil
	})
}

type tokenAuth struct{}

func (tokenAuth) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	if string(x.Header("X-Token")) == "ok" {
		return &policy.Consumer{Name: "app"}, nil
	}
	return nil, nil
}

// newBackend answers 200 with a pagination Link and a Deprecation of its
// own, which the policy's must replace.
func newBackend(t *testing.T) *httptest.Server {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `</v1/items?page=2>; rel="next"`)
		w.Header().Set("Deprecation", "true")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	return be
}

func start(t *testing.T, backendURL, settings string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Server+configYAML(backendURL, settings), nil)
}

func configYAML(backendURL, settings string) string {
	return fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: v1
    paths: ["/v1"]
    service: be
    policies:
      test-token-auth: {}
      deprecation: %s
  - name: v2
    paths: ["/v2"]
    service: be
`, backendURL, settings)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string, headers ...string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func wantHeaders(t *testing.T, what string, h http.Header, want map[string][]string) {
	t.Helper()
	for name, v := range want {
		if got := h.Values(name); strings.Join(got, "\n") != strings.Join(v, "\n") {
			t.Errorf("%s: %s = %q, want %q", what, name, got, v)
		}
	}
}

// The example of RFC 9745 section 4: deprecated on Friday, June 30, 2023 at
// 23:59:59 UTC, sunset on Sunday, June 30, 2024 at 23:59:59 UTC.
func TestHeadersFollowTheRFCs(t *testing.T) {
	g := start(t, newBackend(t).URL, `
        deprecated_at: "2023-06-30T23:59:59Z"
        sunset: "2024-06-30T23:59:59Z"
        link: https://developer.example.com/deprecation
        sunset_link: https://developer.example.com/sunset`)

	want := map[string][]string{
		"Deprecation": {"@1688169599"},
		"Sunset":      {"Sun, 30 Jun 2024 23:59:59 GMT"},
		"Link": {
			`</v1/items?page=2>; rel="next"`,
			`<https://developer.example.com/deprecation>; rel="deprecation"; type="text/html"`,
			`<https://developer.example.com/sunset>; rel="sunset"; type="text/html"`,
		},
	}
	a := get(t, g.URL+"/v1/items", "X-Token", "ok")
	if a.status != 200 || a.body != "ok" {
		t.Fatalf("status %d %q", a.status, a.body)
	}
	wantHeaders(t, "upstream answer", a.header, want)

	// The gateway's own refusal carries them too.
	a = get(t, g.URL+"/v1/items")
	if a.status != 401 {
		t.Fatalf("status %d, want 401", a.status)
	}
	want["Link"] = want["Link"][1:]
	wantHeaders(t, "refusal", a.header, want)

	// Other routes are not deprecated.
	if a := get(t, g.URL+"/v2/items"); a.header.Get("Sunset") != "" || a.header.Get("Deprecation") != "true" {
		t.Errorf("v2: Deprecation %q Sunset %q, want the upstream's own", a.header.Get("Deprecation"), a.header.Get("Sunset"))
	}
}

// A date is midnight UTC; without deprecated_at the route is deprecated
// since the gateway first ran it with the policy, and stays so across
// reloads.
func TestDatesAndDefaultDeprecation(t *testing.T) {
	clock := testutil.NewClock() // 2023-11-14T22:13:20Z
	defer deprecation.SetClock(clock.Now)()
	be := newBackend(t)
	g := start(t, be.URL, `{sunset: 2027-06-30, link: "/docs/v1-retirement"}`)

	a := get(t, g.URL+"/v1", "X-Token", "ok")
	wantHeaders(t, "default date", a.header, map[string][]string{
		"Deprecation": {"@1700000000"},
		"Sunset":      {"Wed, 30 Jun 2027 00:00:00 GMT"},
		"Link":        {`</v1/items?page=2>; rel="next"`, `</docs/v1-retirement>; rel="deprecation"; type="text/html"`},
	})

	clock.Advance(time.Hour)
	g.Reload(t, gatewaytest.Server+configYAML(be.URL, `{sunset: 2027-06-30, link: "/docs/v1-sunset"}`))
	a = get(t, g.URL+"/v1", "X-Token", "ok")
	wantHeaders(t, "after a reload", a.header, map[string][]string{
		"Deprecation": {"@1700000000"}, // the first date, kept
		"Link":        {`</v1/items?page=2>; rel="next"`, `</docs/v1-sunset>; rel="deprecation"; type="text/html"`},
	})
}

// A default deprecation date never comes after the sunset (RFC 9745
// section 4).
func TestDefaultDeprecationNotAfterSunset(t *testing.T) {
	clock := testutil.NewClock()
	defer deprecation.SetClock(clock.Now)()
	g := start(t, newBackend(t).URL, `{sunset: "2020-01-01"}`)

	a := get(t, g.URL+"/v1", "X-Token", "ok")
	wantHeaders(t, "past sunset", a.header, map[string][]string{
		"Deprecation": {"@1577836800"},
		"Sunset":      {"Wed, 01 Jan 2020 00:00:00 GMT"},
	})
	if a.status != 200 {
		t.Errorf("status %d: without after_sunset the route keeps answering", a.status)
	}
}

func TestRefuseAfterSunset(t *testing.T) {
	clock := testutil.NewClock() // 2023-11-14T22:13:20Z
	defer deprecation.SetClock(clock.Now)()
	g := start(t, newBackend(t).URL, `{sunset: "2023-11-14T23:40:00+01:00", after_sunset: refuse, link: "https://example.com/v1"}`)

	if a := get(t, g.URL+"/v1", "X-Token", "ok"); a.status != 200 {
		t.Fatalf("before the sunset: %d %s", a.status, a.body)
	}
	clock.Advance(26*time.Minute + 39*time.Second) // 22:39:59Z
	if a := get(t, g.URL+"/v1", "X-Token", "ok"); a.status != 200 {
		t.Fatalf("a second before the sunset: %d %s", a.status, a.body)
	}
	clock.Advance(time.Second)                 // 22:40:00Z, the sunset
	for _, token := range []string{"ok", ""} { // refused before authentication
		a := get(t, g.URL+"/v1", "X-Token", token)
		var e struct {
			Error struct {
				Status  int    `json:"status"`
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal([]byte(a.body), &e)
		if a.status != 410 || e.Error.Code != "sunset" || e.Error.Message != "this API was retired on Tue, 14 Nov 2023 22:40:00 GMT" {
			t.Errorf("at the sunset (token %q): %d %s", token, a.status, a.body)
		}
		wantHeaders(t, "410", a.header, map[string][]string{
			"Sunset": {"Tue, 14 Nov 2023 22:40:00 GMT"},
			"Link":   {`<https://example.com/v1>; rel="deprecation"; type="text/html"`},
		})
	}
}

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: a
    paths: ["/a"]
    service: be
    policies:
      deprecation:
        deprecated_at: "2027-13-01"
        sunset: "30/06/2027"
        link: "https://example.com/a b"
        sunset_link: "https://user:pw@example.com/"
        after_sunset: block
  - name: b
    paths: ["/b"]
    service: be
    policies:
      deprecation: {deprecated_at: "2027-06-30", sunset: "2027-06-29", after_sunset: refuse, link: "https:///x"}
  - name: c
    paths: ["/c"]
    service: be
    policies:
      deprecation: {after_sunset: refuse, link: "<https://x>"}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:10:9: "2027-13-01" is neither a date (2027-06-30) nor an RFC 3339 time`,
		`t.yaml:11:9: "30/06/2027" is neither a date`,
		`t.yaml:12:9: "https://example.com/a b": ' ' is not allowed in a URI; percent-encode it`,
		`t.yaml:13:9: "https://user:pw@example.com/": a link must not carry user:password`,
		`t.yaml:14:9: "block" is not one of continue, refuse`,
		`t.yaml:19:50: 2027-06-29 is before deprecated_at 2027-06-30`,
		`t.yaml:19:94: "https:///x": an https URI needs a host`,
		`t.yaml:24:21: refuse needs a sunset date`,
		`t.yaml:24:43: "<https://x>": '<' is not allowed in a URI`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
}
