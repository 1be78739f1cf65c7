package transform_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

func TestResponseHeaderEdits(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "response-transform", `
        add_headers: {X-Served-By: "gw:{route}", X-Caller: "{consumer}", X-Caller-Header: "{header.X-In}"}
        remove_headers: [X-Internal]
        rename_headers: {X-Multi: X-Renamed}`)

	a := do(t, "GET", g.URL+"/lines", nil, "X-Test-Consumer", "alice", "X-In", "in")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if got := a.header.Values("X-Renamed"); strings.Join(got, "|") != "one|two" {
		t.Errorf("X-Renamed = %q, want both lines of X-Multi", got)
	}
	for name, want := range map[string]string{
		"X-Multi": "", "X-Internal": "",
		"X-Served-By": "gw:api", "X-Caller": "alice", "X-Caller-Header": "in",
		"Link": `</items?page=2>; rel="next"`,
	} {
		if got := strings.Join(a.header.Values(name), ", "); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestResponseStatusMapOnUpstreamStatus(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "response-transform", `{status_map: {404: 410, 500: 503}}`)

	for _, c := range []struct{ path, body string }{
		{"/status/404", `{"upstream":true}`},
		{"/status/500", `{"upstream":true}`},
	} {
		a := do(t, "GET", g.URL+c.path, nil)
		want := map[string]int{"/status/404": 410, "/status/500": 503}[c.path]
		if a.status != want || a.body != c.body {
			t.Errorf("%s: %d %q, want %d with the upstream's body", c.path, a.status, a.body, want)
		}
	}
	if a := do(t, "GET", g.URL+"/status/201", nil); a.status != 201 {
		t.Errorf("an unmapped status became %d", a.status)
	}
}

// A gateway error keeps its JSON shape, with the status it is given.
func TestResponseStatusMapOnGatewayError(t *testing.T) {
	closed := testutil.ClosedPort(t)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
consumers: [{name: alice}]
services:
  - name: down
    targets: [{url: "http://%s"}]
    retries: {attempts: 1}
routes:
  - name: down
    paths: ["/"]
    service: down
    policies:
      test-consumer-header: {}
      response-transform:
        status_map: {502: 503, 401: 403}
        add_headers: {Retry-After: "30"}
        json: {add: {/error/route: "{route}"}}
`, closed), nil)

	a := do(t, "GET", g.URL+"/x", nil, "X-Test-Consumer", "alice")
	code, status := errorCode(t, a.body)
	if a.status != 503 || status != 503 || code != "upstream_unavailable" {
		t.Errorf("got %d %s, want 503 with status 503 and code upstream_unavailable in the body", a.status, a.body)
	}
	if !strings.Contains(a.body, `"route":"down"`) || a.header.Get("Retry-After") != "30" {
		t.Errorf("body %s, Retry-After %q: want the route added and the header set", a.body, a.header.Get("Retry-After"))
	}
	if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(a.body))
	}

	// A policy's refusal is mapped the same way.
	a = do(t, "GET", g.URL+"/x", nil)
	if code, status := errorCode(t, a.body); a.status != 403 || status != 403 || code != "unauthorized" {
		t.Errorf("refusal: got %d %s, want 403 with status 403 and code unauthorized", a.status, a.body)
	}
}

func TestResponseJSONEdits(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "response-transform",
		`{json: {remove: [/secret, /user/internal, /items/0], add: {/served_for: "{consumer}"}, rename: {/id: /user/id}}}`)

	a := do(t, "GET", g.URL+"/json", nil, "X-Test-Consumer", "alice")
	want := `{"user":{"name":"bob","id":7},"items":[2,3],"big":12345678901234567890,"served_for":"alice"}`
	if a.status != 200 || a.body != want {
		t.Errorf("got %d %s\nwant %s", a.status, a.body, want)
	}
	if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(a.body))
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q changed", ct)
	}

	// Streamed answers are not held back to be edited.
	for _, path := range []string{"/big", "/stream"} {
		a := do(t, "GET", g.URL+path, nil)
		if a.status != 200 || !strings.Contains(a.body, `"secret":"s3"`) || strings.Contains(a.body, "served_for") {
			t.Errorf("%s: %d %.80s: want the streamed body untouched", path, a.status, a.body)
		}
	}
	// A HEAD answer has no body to edit and keeps its length.
	a = do(t, "HEAD", g.URL+"/json", nil)
	if a.status != 200 || a.header.Get("Content-Length") == "0" {
		t.Errorf("HEAD: %d Content-Length %q", a.status, a.header.Get("Content-Length"))
	}
}
