package transform_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

const headerSettings = `
        add_headers:
          X-Who: "{consumer}"
          X-Groups: "{consumer.groups}"
          X-Client: "{client_ip}"
          X-Rid: "{request_id}"
          X-Route: "route={route}"
          X-Path: "{path}"
          X-From-Header: "{header.X-In}"
          X-From-Query: "q={query.q}"
          X-Braces: "{{literal}}"
          X-Static: fixed
          X-Spoofable: "{header.X-Absent}"
          X-Old-Trace: "{header.X-Trace}"
        remove_headers: [Authorization, X-Remove-Me]
        rename_headers: {X-Trace: X-Upstream-Trace}`

func TestRequestHeaderEdits(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", headerSettings)

	a := do(t, "GET", g.URL+"/things?q=a%20b&z=1", nil,
		"X-Test-Consumer", "alice",
		"X-In", "from-client",
		"X-Request-ID", "rid-123",
		"Authorization", "Bearer secret",
		"X-Remove-Me", "1",
		"X-Trace", "t1", "X-Trace", "t2",
		"X-Spoofable", "client says so",
		"X-Static", "client value")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	h := http.Header(be.received().Header)
	want := map[string]string{
		"X-Who":            "alice",
		"X-Groups":         "partners, staff",
		"X-Client":         "127.0.0.1",
		"X-Rid":            "rid-123",
		"X-Route":          "route=api",
		"X-Path":           "/things",
		"X-From-Header":    "from-client",
		"X-From-Query":     "q=a b",
		"X-Braces":         "{literal}",
		"X-Static":         "fixed",
		"X-Upstream-Trace": "t1, t2",
		// Templates read the headers as they reached the policy, before
		// the rename moved X-Trace.
		"X-Old-Trace": "t1",
		// The gateway's own headers are untouched.
		"X-Consumer-Name":   "alice",
		"X-Consumer-Groups": "partners, staff",
		"X-Request-Id":      "rid-123",
		"X-Forwarded-For":   "127.0.0.1",
	}
	for name, v := range want {
		if got := strings.Join(h.Values(name), ", "); got != v {
			t.Errorf("upstream %s = %q, want %q", name, got, v)
		}
	}
	// Removed, renamed away, and a template that rendered empty: the
	// client's own copy must not go upstream in its place.
	for _, name := range []string{"Authorization", "X-Remove-Me", "X-Trace", "X-Spoofable"} {
		if v := h.Values(name); len(v) > 0 {
			t.Errorf("upstream %s = %q, want none", name, v)
		}
	}
}

func TestRequestTemplatesWithoutConsumer(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{add_headers: {X-Who: "{consumer}", X-Groups: "[{consumer.groups}]"}}`)

	if a := do(t, "GET", g.URL+"/open", nil, "X-Who", "mallory"); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	h := http.Header(be.received().Header)
	if v := h.Values("X-Who"); len(v) > 0 {
		t.Errorf("X-Who = %q without a consumer, want the client's copy removed", v)
	}
	if v := h.Get("X-Groups"); v != "[]" {
		t.Errorf("X-Groups = %q, want []", v)
	}
	// The anonymous consumer of the authenticated route is a consumer.
	do(t, "GET", g.URL+"/x", nil)
	if v := http.Header(be.received().Header).Get("X-Who"); v != "guest" {
		t.Errorf("X-Who = %q for the anonymous consumer, want guest", v)
	}
}

// A value decoded from the query can hold CR LF; as a header value it must
// not start a header line of its own.
func TestRequestHeaderTemplateCannotSplitHeaders(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{add_headers: {X-Q: "{query.q}"}}`)

	if a := do(t, "GET", g.URL+"/open?q=a%0D%0AX-Injected:%201", nil); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	h := http.Header(be.received().Header)
	if v := h.Get("X-Injected"); v != "" {
		t.Fatalf("header injected through a template: X-Injected = %q", v)
	}
	if v := h.Get("X-Q"); v != "a  X-Injected: 1" {
		t.Errorf("X-Q = %q, want the control characters as spaces", v)
	}
}

// The consumer header the authentication policy sets (as jwt's
// claims_to_headers does) can be templated and then removed.
func TestRequestClaimHeaderMovedIntoAnotherHeader(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{add_headers: {X-Account: "acct:{header.X-User-Id}"}, remove_headers: [X-User-Id]}`)

	do(t, "GET", g.URL+"/x", nil, "X-Test-Consumer", "alice")
	h := http.Header(be.received().Header)
	if v := h.Get("X-Account"); v != "acct:user-alice" {
		t.Errorf("X-Account = %q, want acct:user-alice", v)
	}
	if v := h.Values("X-User-Id"); len(v) > 0 {
		t.Errorf("X-User-Id = %q, want it removed", v)
	}
}

func TestRequestQueryEdits(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `
        remove_query: [debug, "a b", "k[]"]
        add_query:
          who: "{consumer}"
          page: "1"
          note: "x&y=z #+ é/?"
          from: "{header.X-In}"`)

	cases := []struct{ name, query, want string }{
		{"untouched order and bytes kept, removed and replaced go",
			"z=1&debug=true&page=9&y=%2F&a+b=2&a%20b=3&k%5B%5D=1&k[]=2&keep=%C3%A9&&flag",
			"z=1&y=%2F&keep=%C3%A9&flag&from=h%20v&note=x%26y%3Dz%20%23%2B%20%C3%A9%2F%3F&page=1&who=alice"},
		{"no query", "", "from=h%20v&note=x%26y%3Dz%20%23%2B%20%C3%A9%2F%3F&page=1&who=alice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := g.URL + "/q"
			if c.query != "" {
				u += "?" + c.query
			}
			if a := do(t, "GET", u, nil, "X-Test-Consumer", "alice", "X-In", "h v"); a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if got := be.received().RawQuery; got != c.want {
				t.Errorf("upstream query\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// Only removals: a query without those parameters is sent as it came.
func TestRequestQueryRemovalKeepsOtherQueriesVerbatim(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{remove_query: [debug]}`)

	for q, want := range map[string]string{
		"a=1&b=%2f%2F&c":       "a=1&b=%2f%2F&c",
		"debug=1":              "",
		"a=1&debug&debug=2&b=": "a=1&b=",
	} {
		do(t, "GET", g.URL+"/open?"+q, nil)
		if got := be.received().RawQuery; got != want {
			t.Errorf("?%s went upstream as %q, want %q", q, got, want)
		}
	}
}

const jsonSettings = `
        json:
          add:
            /owner: "{consumer}"
            /meta/route: "{route}"
            /meta/tags: ["a", "{consumer.groups}"]
            /user/id: "{header.X-User-Id}"
            /items/0: first
            /items/-: 99
            /flags: {on: true, off: null, n: 1.5}
            /a~1b: slash
          remove: [/secret, /items/1, /user/internal, /missing/deep]
          rename: {/old: /new/place, /nested/x: /y}`

func TestRequestJSONEdits(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", jsonSettings)

	cases := []struct{ name, in, want string }{
		{"nested, arrays, templates",
			`{"owner": "mallory", "secret": "s", "items": [10, 20, 30], "user": {"internal": 1, "name": "bob"},
			  "old": {"keep": [1, 2]}, "nested": {"x": "moved", "z": 0}, "big": 123456789012345678901234567890, "esc": "\u00e9\n"}`,
			`{"owner": "alice", "items": ["first", 10, 30, 99], "user": {"name": "bob", "id": "user-alice"},
			  "nested": {"z": 0}, "big": 123456789012345678901234567890, "esc": "é\n",
			  "new": {"place": {"keep": [1, 2]}}, "y": "moved",
			  "a/b": "slash", "flags": {"n": 1.5, "off": null, "on": true},
			  "meta": {"route": "api", "tags": ["a", "partners, staff"]}}`},
		{"duplicate names collapse to the last, the one parsers keep",
			`{"owner": "x", "\u006fwner": "y", "secret": 1, "secret": 2}`,
			`{"owner": "alice", "user": {"id": "user-alice"}, "meta": {"route": "api", "tags": ["a", "partners, staff"]},
			  "items": ["first", 99],
			  "a/b": "slash", "flags": {"n": 1.5, "off": null, "on": true}}`},
		{"a path through a scalar is left alone",
			`{"user": "plain", "items": {"0": "x"}, "meta": 5}`,
			`{"owner": "alice", "user": "plain", "items": {"0": "first", "-": 99}, "meta": 5,
			  "a/b": "slash", "flags": {"n": 1.5, "off": null, "on": true}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, "POST", g.URL+"/j", strings.NewReader(c.in), "X-Test-Consumer", "alice", "Content-Type", "application/json")
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			r := be.received()
			if !jsonEqual(t, r.Body, c.want) {
				t.Errorf("upstream body\n got %s\nwant %s", r.Body, c.want)
			}
			if r.ContentLength != int64(len(r.Body)) {
				t.Errorf("Content-Length %d for a body of %d bytes", r.ContentLength, len(r.Body))
			}
		})
	}
}

func TestRequestJSONKeepsUntouchedValuesVerbatim(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{json: {remove: [/drop]}}`)

	in := `{ "n": 1.0e+2, "s": "\u00e9\/", "drop": [1, {"x": 2}], "a": [ 1 , 2 ] }`
	do(t, "POST", g.URL+"/open", strings.NewReader(in), "Content-Type", "application/vnd.api+json; charset=utf-8")
	if got, want := be.received().Body, `{"n":1.0e+2,"s":"\u00e9\/","a":[1,2]}`; got != want {
		t.Errorf("upstream body %s, want %s", got, want)
	}
}

func TestRequestJSONChunkedBody(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{json: {add: {/owner: "{consumer}"}, remove: [/secret]}}`)

	a := do(t, "POST", g.URL+"/c", chunked{strings.NewReader(`{"secret": 1, "data": [1, 2]}`)},
		"X-Test-Consumer", "alice", "Content-Type", "application/json")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	r := be.received()
	if want := `{"data":[1,2],"owner":"alice"}`; r.Body != want {
		t.Errorf("upstream body %s, want %s", r.Body, want)
	}
	if r.Chunked || r.ContentLength != int64(len(r.Body)) {
		t.Errorf("upstream framing: chunked=%v Content-Length=%d, want the edited body's length %d", r.Chunked, r.ContentLength, len(r.Body))
	}
}

func TestRequestNonJSONBodyPassesUntouched(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{json: {remove: [/secret]}, add_headers: {X-Seen: "yes"}}`)

	for _, c := range []struct{ name, ct, body string }{
		{"text", "text/plain", `{"secret": 1}`},
		{"form", "application/x-www-form-urlencoded", "secret=1&b=2"},
		{"json-looking type", "application/jsonp", `{"secret": 1}`},
		{"no type", "", `{"secret": 1}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := []string{}
			if c.ct != "" {
				h = append(h, "Content-Type", c.ct)
			}
			if a := do(t, "POST", g.URL+"/open", strings.NewReader(c.body), h...); a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			r := be.received()
			if r.Body != c.body || r.Header["X-Seen"] == nil {
				t.Errorf("upstream got %q (X-Seen %q), want %q untouched", r.Body, r.Header["X-Seen"], c.body)
			}
		})
	}
	// No body at all.
	if a := do(t, "GET", g.URL+"/open", nil, "Content-Type", "application/json"); a.status != 200 {
		t.Errorf("GET without a body: %d %s", a.status, a.body)
	}
	if r := be.received(); r.Body != "" || r.ContentLength != 0 {
		t.Errorf("GET went upstream with body %q (length %d)", r.Body, r.ContentLength)
	}
}

func TestRequestJSONRefusals(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", `{json: {remove: [/secret], max_body_bytes: 64}}`)

	for _, c := range []struct {
		name   string
		body   string
		header []string
		status int
		code   string
	}{
		{"invalid", `{"secret": `, nil, 400, "invalid_json"},
		{"trailing garbage", `{"a": 1} x`, nil, 400, "invalid_json"},
		{"too large", `{"pad": "` + strings.Repeat("x", 100) + `"}`, nil, 413, "body_too_large"},
		{"compressed", `{"secret": 1}`, []string{"Content-Encoding", "gzip"}, 415, "unsupported_encoding"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := append([]string{"Content-Type", "application/json"}, c.header...)
			a := do(t, "POST", g.URL+"/open/"+strconv.Itoa(len(c.body)), strings.NewReader(c.body), h...)
			if code, _ := errorCode(t, a.body); a.status != c.status || code != c.code {
				t.Errorf("got %d %s, want %d %s", a.status, a.body, c.status, c.code)
			}
		})
	}
}

// A chunked body over request-size-limit's cap is refused while it is read
// to be edited, and the upstream never sees it.
func TestRequestJSONWithinRequestSizeLimit(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, "request-transform", "{json: {remove: [/secret]}}\n      request-size-limit: {max_bytes: 32}")

	a := do(t, "POST", g.URL+"/open/big", chunked{strings.NewReader(`{"secret": 1, "pad": "` + strings.Repeat("x", 64) + `"}`)},
		"Content-Type", "application/json")
	if code, _ := errorCode(t, a.body); a.status != 413 || code != "body_too_large" {
		t.Errorf("got %d %s, want 413 body_too_large", a.status, a.body)
	}
	if r := be.received(); r.Path != "" {
		t.Errorf("the upstream got %s", r.Path)
	}
	a = do(t, "POST", g.URL+"/open/small", chunked{strings.NewReader(`{"secret": 1, "a": 2}`)}, "Content-Type", "application/json")
	if r := be.received(); a.status != 200 || r.Body != `{"a":2}` {
		t.Errorf("within the cap: %d, upstream got %q", a.status, r.Body)
	}
}
