package transform_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy"
	_ "github.com/tollgate/tollgate/dataplane/policy/sizelimit"
	_ "github.com/tollgate/tollgate/dataplane/policy/transform"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// test-consumer-header stands in for an authentication policy: the
// consumer is the one X-Test-Consumer names. Like jwt's claims_to_headers,
// it also sends a header upstream (X-User-Id), for templates to read.
func init() {
	policy.Register("test-consumer-header", policy.Authenticate, func(s *policy.AuthSettings, b *policy.Build) (any, error) {
		return consumerHeader{b.Consumers}, nil
	})
}

type consumerHeader struct{ consumers *policy.Directory }

func (a consumerHeader) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	name := x.Header("X-Test-Consumer")
	if len(name) == 0 {
		return nil, nil
	}
	c, ok := a.consumers.Get(string(name))
	if !ok {
		return nil, &policy.Reject{Status: 401, Code: "invalid_credentials", Message: "unknown consumer"}
	}
	x.SetRequestHeader("X-User-Id", "user-"+c.Name)
	return c, nil
}

// seen is what the echo backend received.
type seen struct {
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	RawQuery      string              `json:"raw_query"`
	Header        map[string][]string `json:"header"`
	Body          string              `json:"body"`
	ContentLength int64               `json:"content_length"`
	Chunked       bool                `json:"chunked"`
}

// backend records each request and answers by path:
//
//	/status/NNN  status NNN with a small JSON body
//	/json        a small JSON body (served from memory by the gateway)
//	/big         a JSON body over 16 KiB (streamed by the gateway)
//	/stream      a small JSON body without a length (streamed)
//	/lines       several lines of one header, and a Link
//	anything     200 with what it received, as JSON
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	last seen
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	be := &backend{}
	be.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header,
			Body: string(body), ContentLength: r.ContentLength, Chunked: len(r.TransferEncoding) > 0}
		be.mu.Lock()
		be.last = s
		be.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			var code int
			fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/status/"), &code)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, `{"upstream":true}`)
			return
		case r.URL.Path == "/json":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			io.WriteString(w, `{"id": 7, "secret": "s3", "user": {"name": "bob", "internal": 1}, "items": [1, 2, 3], "big": 12345678901234567890}`)
			return
		case r.URL.Path == "/big":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"secret":"s3","pad":"`+strings.Repeat("x", 20<<10)+`"}`)
			return
		case r.URL.Path == "/stream":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"secret":"s3"}`)
			w.(http.Flusher).Flush() // no Content-Length: chunked
			return
		case r.URL.Path == "/lines":
			w.Header().Add("X-Multi", "one")
			w.Header().Add("X-Multi", "two")
			w.Header().Set("X-Internal", "hide me")
			w.Header().Set("Link", `</items?page=2>; rel="next"`)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(be.Close)
	return be
}

func (be *backend) received() seen {
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.last
}

// gateway starts a gateway with one route "api" on "/" to be, protected by
// test-consumer-header (anonymous: guest), with the given policy settings,
// and a route "open" on "/open" without authentication.
func gateway(t *testing.T, be *backend, policyName, settings string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Server+configYAML(be.URL, policyName, settings), nil)
}

func configYAML(url, policyName, settings string) string {
	return fmt.Sprintf(`
consumers:
  - {name: alice, groups: [partners, staff]}
  - {name: guest}
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      test-consumer-header: {anonymous: guest}
      %s: %s
  - name: open
    paths: ["/open"]
    service: be
    policies:
      %s: %s
`, url, policyName, settings, policyName, settings)
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request; headers are name, value pairs (a name may repeat).
func do(t *testing.T, method, url string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// errorCode returns the code of a gateway JSON error ("" if it is not one)
// and its status field.
func errorCode(t *testing.T, body string) (string, int) {
	t.Helper()
	var e struct {
		Error struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return "", 0
	}
	return e.Error.Code, e.Error.Status
}

// chunked hides a reader's length from the HTTP client, which then sends
// the body chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// jsonEqual compares two JSON texts by value.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	dec := json.NewDecoder(strings.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Errorf("not JSON: %q: %v", got, err)
		return false
	}
	dec = json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}
