package requestvalidation_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/tollgate/tollgate/dataplane/policy/requestvalidation"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// spec is relative to the package directory, the tests' working
// directory: relative spec paths start from the gateway's.
const spec = "testdata/store.yaml"

// backend records what reaches it.
type backend struct {
	URL  string
	hits atomic.Int64
	mu   sync.Mutex
	uri  string
	body []byte
	hdr  http.Header
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.uri, b.body, b.hdr = r.RequestURI, body, r.Header.Clone()
		b.mu.Unlock()
		b.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func (b *backend) last() (string, []byte, http.Header) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.uri, b.body, b.hdr
}

// startGateway runs a gateway whose routes each serve one operation of
// the store document, plus one route that finds the operation by method
// and path under /api.
func startGateway(t *testing.T, be *backend) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Server+`
services:
  - name: store
    targets: [{url: "`+be.URL+`"}]
routes:
  - name: listPets
    paths: ["=/pets"]
    methods: [GET, HEAD]
    service: store
    policies: {request-validation: {spec: `+spec+`, operation: listPets}}
  - name: createPet
    paths: ["=/pets"]
    methods: [POST]
    service: store
    policies: {request-validation: {spec: `+spec+`, operation: createPet, max_body_bytes: 256}}
  - name: showPetById
    paths: ["/pets/{petId}"]
    methods: [GET]
    service: store
    policies: {request-validation: {spec: `+spec+`, operation: "GET /pets/{petId}"}}
  - name: updatePet
    paths: ["/pets/{petId}"]
    methods: [PATCH]
    service: store
    policies: {request-validation: {spec: `+spec+`, operation: updatePet}}
  - name: whole-api
    paths: ["/api/"]
    service: store
    strip_path: true
    policies: {request-validation: {spec: `+spec+`, base_path: /api}}
  - name: loose
    paths: ["/loose/"]
    service: store
    policies: {request-validation: {spec: `+spec+`, base_path: /loose, operation: listPets}}
  - name: no-body-check
    paths: ["/unchecked/"]
    service: store
    strip_path: true
    policies: {request-validation: {spec: `+spec+`, base_path: /unchecked, body: false}}
`, nil)
}

type request struct {
	method, path string
	header       map[string]string
	body         string
}

func do(t *testing.T, g *gatewaytest.Gateway, r request) (int, string) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, g.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
		if v == "" {
			req.Header.Del(k)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const token = "0123abcd"

var withToken = map[string]string{"X-Request-Token": token}

func TestRefusals(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, be)
	for _, c := range []struct {
		name string
		req  request
		want string
	}{
		{"query maximum", request{method: "GET", path: "/pets?limit=500"}, `query parameter "limit": must be at most 100`},
		{"query type", request{method: "GET", path: "/pets?limit=ten"}, `query parameter "limit": must be an integer`},
		{"query enum", request{method: "GET", path: "/pets?tag=fish"}, `query parameter "tag": is not one of the allowed values ["cat","dog","bird"]`},
		{"query escaped", request{method: "GET", path: "/pets?t%61g=f%69sh"}, `query parameter "tag": is not one of the allowed values ["cat","dog","bird"]`},
		{"query array item", request{method: "GET", path: "/pets?sort=name,weight"}, `query parameter "sort" at [1]: is not one of the allowed values ["name","age"]`},
		{"path minimum", request{method: "GET", path: "/pets/0"}, `path parameter "petId": must be at least 1`},
		{"path type", request{method: "GET", path: "/pets/rex"}, `path parameter "petId": must be an integer`},
		{"cookie", request{method: "GET", path: "/pets/1", header: map[string]string{"Cookie": "theme=dark; session=abc"}}, `cookie parameter "session": must be at least 4 characters long`},
		{"header missing", request{method: "POST", path: "/pets", body: `{"name":"Rex","email":"a@b.c"}`}, `header parameter "X-Request-Token": is required`},
		{"header pattern", request{method: "POST", path: "/pets", header: map[string]string{"X-Request-Token": "XYZ"}, body: `{"name":"Rex","email":"a@b.c"}`}, `header parameter "X-Request-Token": must match the regular expression "^[a-f0-9]{8}$"`},
		{"body required property", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex"}`}, `body: property "email" is missing`},
		{"body nested required", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","address":{}}`}, `body.address: property "city" is missing`},
		{"body nested pattern", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","address":{"city":"Oslo","zip":"x"}}`}, `body.address.zip: must match the regular expression "^[0-9]{5}$"`},
		{"body maximum", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","age":41}`}, `body.age: must be at most 40`},
		{"body array item", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","toys":["ball","a very long toy name"]}`}, `body.toys[1]: must be at most 10 characters long`},
		{"body array size", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","toys":["a","b","c","d"]}`}, `body.toys: must have at most 3 items`},
		{"body type", request{method: "POST", path: "/pets", header: withToken, body: `{"name":7,"email":"a@b.c"}`}, `body.name: must be a string`},
		{"body extra property", request{method: "POST", path: "/pets", header: withToken, body: `{"name":"Rex","email":"a@b.c","color":"red"}`}, `body: property "color" is unsupported`},
		{"body not JSON", request{method: "POST", path: "/pets", header: withToken, body: `{"name":`}, `body: cannot be decoded: unexpected EOF`},
		{"body missing", request{method: "POST", path: "/pets", header: withToken}, `body: is required`},
		{"content type", request{method: "POST", path: "/pets", header: map[string]string{"X-Request-Token": token, "Content-Type": "text/plain"}, body: `name=Rex`}, `body: content type "text/plain" is not accepted (expected application/json)`},
		{"content type missing", request{method: "POST", path: "/pets", header: map[string]string{"X-Request-Token": token, "Content-Type": ""}, body: `{}`}, `body: Content-Type is missing (expected application/json)`},
		{"form body", request{method: "PATCH", path: "/pets/1", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: `name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`}, `body.name: must be at most 20 characters long`},
		{"route methods", request{method: "DELETE", path: "/pets"}, ``},
		{"operation method", request{method: "POST", path: "/loose/pets"}, `method POST is not the method of operation listPets (GET)`},
		{"operation path", request{method: "GET", path: "/loose/pets/1"}, `path /pets/1 does not match /pets of operation listPets`},
		{"routed: query", request{method: "GET", path: "/api/pets?limit=0"}, `query parameter "limit": must be at least 1`},
		{"routed: path", request{method: "GET", path: "/api/pets/0"}, `path parameter "petId": must be at least 1`},
		{"routed: body", request{method: "POST", path: "/api/pets", header: withToken, body: `{"email":"a@b.c"}`}, `body: property "name" is missing`},
		{"routed: partial segment", request{method: "GET", path: "/api/files/Notes.json"}, `path parameter "name": must match the regular expression "^[a-z]+$"`},
		{"routed: unknown path", request{method: "GET", path: "/api/owners"}, `no operation of the API matches GET /owners`},
		{"routed: unknown method", request{method: "DELETE", path: "/api/pets/1"}, `method DELETE is not allowed on /pets/1 (allowed: GET, PATCH)`},
		{"routed: outside base path", request{method: "GET", path: "/apipets"}, ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, g, c.req)
			if c.want == "" { // not routed to a validating route at all
				if status != http.StatusNotFound {
					t.Fatalf("status %d (%s), want 404", status, body)
				}
				return
			}
			if status != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", status, body)
			}
			var e struct {
				Error struct {
					Status  int    `json:"status"`
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if e.Error.Code != "invalid_request" || e.Error.Status != 400 || e.Error.Message != c.want {
				t.Errorf("got %+v\nwant message %s", e.Error, c.want)
			}
		})
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend was called %d times for refused requests", n)
	}
}

func TestValidRequestsPassUnchanged(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, be)
	// Spacing, key order and escapes the way the client wrote them: the
	// backend must see these very bytes.
	body := "{ \"email\" : \"ann@example.com\",\n  \"name\":\"R\\u00e9x\", \"age\": 4, \"address\": {\"city\": \"Oslo\"} }"
	for _, c := range []struct {
		req     request
		wantURI string
	}{
		{request{method: "GET", path: "/pets?limit=10&tag=dog&sort=name,age&extra=kept"}, "/pets?limit=10&tag=dog&sort=name,age&extra=kept"},
		{request{method: "GET", path: "/pets"}, "/pets"},
		{request{method: "GET", path: "/pets/42", header: map[string]string{"Cookie": "session=abcdef"}}, "/pets/42"},
		{request{method: "POST", path: "/pets", header: withToken, body: body}, "/pets"},
		{request{method: "PATCH", path: "/pets/1", header: map[string]string{"Content-Type": "application/merge-patch+json"}, body: `{"name":"Rex"}`}, "/pets/1"},
		// kin-openapi decodes no XML: such a body goes on unchecked.
		{request{method: "PATCH", path: "/pets/1", header: map[string]string{"Content-Type": "application/xml"}, body: `<pet name="a very long name, longer than 20"/>`}, "/pets/1"},
		{request{method: "GET", path: "/api/files/notes.json"}, "/files/notes.json"},
		{request{method: "POST", path: "/api/pets", header: withToken, body: body}, "/pets"},
		{request{method: "HEAD", path: "/api/pets?limit=3"}, "/pets?limit=3"},
		{request{method: "HEAD", path: "/pets?limit=3"}, "/pets?limit=3"},
		// body: false leaves bodies alone, parameters are still checked.
		{request{method: "POST", path: "/unchecked/pets", header: withToken, body: `not json`}, "/pets"},
	} {
		before := be.hits.Load()
		status, respBody := do(t, g, c.req)
		if status != http.StatusOK {
			t.Fatalf("%s %s: status %d (%s), want 200", c.req.method, c.req.path, status, respBody)
		}
		if be.hits.Load() != before+1 {
			t.Fatalf("%s %s: backend not called", c.req.method, c.req.path)
		}
		uri, got, _ := be.last()
		if uri != c.wantURI {
			t.Errorf("%s %s: backend got %s, want %s", c.req.method, c.req.path, uri, c.wantURI)
		}
		if string(got) != c.req.body {
			t.Errorf("%s %s: backend got body %q, want %q", c.req.method, c.req.path, got, c.req.body)
		}
	}
	status, respBody := do(t, g, request{method: "POST", path: "/unchecked/pets", body: `{}`})
	if status != http.StatusBadRequest || !strings.Contains(respBody, `header parameter \"X-Request-Token\": is required`) {
		t.Errorf("body: false still checks headers: got %d %s", status, respBody)
	}
}

// A chunked body is read whole, validated, and forwarded with the same
// bytes.
func TestChunkedBody(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, be)
	body := `{"name":"Rex","email":"a@b.c"}`
	req, _ := http.NewRequest("POST", g.URL+"/pets", io.MultiReader(strings.NewReader(body[:10]), strings.NewReader(body[10:])))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Token", token)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, got, _ := be.last(); !bytes.Equal(got, []byte(body)) {
		t.Errorf("backend got %q", got)
	}

	req, _ = http.NewRequest("POST", g.URL+"/pets", io.MultiReader(strings.NewReader(`{"name":"Rex",`), strings.NewReader(`"email":7}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Token", token)
	req.ContentLength = -1
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `body.email: must be a string`) {
		t.Errorf("chunked invalid body: %d %s", resp.StatusCode, b)
	}
}

func TestBodyTooLarge(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, be)
	big := `{"name":"` + strings.Repeat("x", 300) + `","email":"a@b.c"}`
	status, body := do(t, g, request{method: "POST", path: "/pets", header: withToken, body: big})
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "body_too_large") {
		t.Errorf("got %d %s, want 413 body_too_large", status, body)
	}
	if be.hits.Load() != 0 {
		t.Error("the backend was called")
	}
}

func TestCompressedBody(t *testing.T) {
	be := newBackend(t)
	g := startGateway(t, be)
	status, body := do(t, g, request{method: "POST", path: "/pets",
		header: map[string]string{"X-Request-Token": token, "Content-Encoding": "gzip"}, body: "\x1f\x8b\x08\x00"})
	if status != http.StatusUnsupportedMediaType || !strings.Contains(body, "unsupported_encoding") {
		t.Errorf("got %d %s, want 415 unsupported_encoding", status, body)
	}
	if be.hits.Load() != 0 {
		t.Error("the backend was called")
	}
}

// OpenAPI 3.1 documents validate with JSON Schema 2020-12.
func TestOpenAPI31(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+`
services:
  - name: store
    targets: [{url: "`+be.URL+`"}]
routes:
  - name: api
    paths: ["/"]
    service: store
    policies: {request-validation: {spec: testdata/store31.yaml}}
`, nil)
	for _, c := range []struct {
		req    request
		status int
		want   string
	}{
		{request{method: "GET", path: "/pets?limit=101"}, 400, `"message":"query parameter \"limit\": must be at most 100"`},
		{request{method: "POST", path: "/pets", body: `{"nickname":null}`}, 400, `"message":"body: property \"name\" is missing"`},
		{request{method: "POST", path: "/pets", body: `{"name":"Rex","nickname":"Rexy-the-dog"}`}, 400, `"message":"body.nickname: must be at most 5 characters long"`},
		{request{method: "POST", path: "/pets", body: `{"name":"Rex","nickname":7}`}, 400, `"message":"body.nickname: must be null or a string"`},
		{request{method: "POST", path: "/pets", body: `{"name":"Rex","nickname":null}`}, 200, `{"ok":true}`},
	} {
		status, body := do(t, g, c.req)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d and %s", c.req.method, c.req.path, c.req.body, status, body, c.status, c.want)
		}
	}
}

// A document given by URL is fetched when the configuration is applied; one
// that cannot be fetched refuses the new configuration, and the running one
// stays.
func TestSpecByURL(t *testing.T) {
	specs := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	t.Cleanup(specs.Close)
	be := newBackend(t)
	cfg := func(spec string) string {
		return gatewaytest.Server + `
services:
  - name: store
    targets: [{url: "` + be.URL + `"}]
routes:
  - name: listPets
    paths: ["=/pets"]
    service: store
    policies: {request-validation: {spec: "` + spec + `", operation: listPets}}
`
	}
	g := gatewaytest.Start(t, cfg(specs.URL+"/store.yaml"), nil)
	check := func() {
		t.Helper()
		if status, body := do(t, g, request{method: "GET", path: "/pets?limit=500"}); status != 400 || !strings.Contains(body, `must be at most 100`) {
			t.Errorf("invalid request: %d %s", status, body)
		}
		if status, body := do(t, g, request{method: "GET", path: "/pets?limit=5"}); status != 200 {
			t.Errorf("valid request: %d %s", status, body)
		}
	}
	check()
	if err := os.WriteFile(filepath.Join(g.Dir, "tollgate.yaml"), []byte(cfg(specs.URL+"/nope.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	err := g.App.Reload()
	if err == nil || !strings.Contains(err.Error(), `request-validation: cannot read "`+specs.URL+`/nope.yaml": GET `+specs.URL+`/nope.yaml: 404 Not Found`) {
		t.Errorf("reload with a missing document: %v", err)
	}
	check()
}
