package openapi_test

import (
	"io"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/openapi"
)

func TestMockResponse(t *testing.T) {
	for _, c := range []struct {
		operation   string
		status      int
		wantStatus  int
		wantHeaders map[string]string
		wantBody    string
	}{
		// The media type's example, and a response header's example.
		{"listPets", 200, 200, map[string]string{"Content-Type": "application/json", "X-Total-Count": "2"},
			`[{"id":1,"name":"Rex","tag":"dog"},{"id":2,"name":"Tom","tag":"cat"}]`},
		// The first of examples in document order ("rex" before "tom").
		{"createPet", 201, 201, map[string]string{"Content-Type": "application/json"}, `{"id":10,"name":"Rex","tag":"dog"}`},
		// 0: the first documented success.
		{"createPet", 0, 201, map[string]string{"Content-Type": "application/json"}, `{"id":10,"name":"Rex","tag":"dog"}`},
		{"createPet", 400, 400, map[string]string{"Content-Type": "application/problem+json"}, `{"status":400,"title":"Invalid pet"}`},
		// Made from the schema: examples, defaults, formats, placeholders.
		{"showPetById", 200, 200, map[string]string{"Content-Type": "application/json"},
			`{"born":"2026-01-01","id":7,"name":"Rex","owner":{"email":"ann@example.com"},"tag":"dog","vaccinated":false}`},
		// A string example of a text media type is the body as it is.
		{"showPetById", 404, 404, map[string]string{"Content-Type": "text/plain"}, `no such pet`},
		// No content: no body and no Content-Type.
		{"DELETE /pets/{petId}", 204, 204, map[string]string{}, ``},
	} {
		status, headers, body, err := openapi.MockResponse(petstore, c.operation, c.status)
		if err != nil {
			t.Errorf("%s %d: %v", c.operation, c.status, err)
			continue
		}
		if status != c.wantStatus || !maps.Equal(headers, c.wantHeaders) || string(body) != c.wantBody {
			t.Errorf("%s %d: got %d %v %s\nwant %d %v %s", c.operation, c.status, status, headers, body, c.wantStatus, c.wantHeaders, c.wantBody)
		}
	}
	_, _, _, err := openapi.MockResponse(petstore, "showPetById", 500)
	if err == nil || err.Error() != "operation showPetById documents no response for status 500 (documented: 200, 404)" {
		t.Errorf("undocumented status: %v", err)
	}
	if _, _, _, err := openapi.MockResponse(petstore, "showPet", 200); err == nil || !strings.HasPrefix(err.Error(), `no operation "showPet"`) {
		t.Errorf("unknown operation: %v", err)
	}
	if _, _, _, err := openapi.MockResponse("testdata/nope.yaml", "showPet", 200); err == nil || !strings.HasPrefix(err.Error(), `cannot read "testdata/nope.yaml"`) {
		t.Errorf("missing document: %v", err)
	}
}

// Mock routes answer with the document's examples, next to a static mock;
// the backend of the service is not needed at all (the design stage).
func TestMockRoutes(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Server+`
routes:
  - name: list
    paths: ["=/pets"]
    methods: [GET]
    mock: {openapi: `+petstore+`, operation: listPets}
  - name: create
    paths: ["=/pets"]
    methods: [POST]
    mock: {openapi: `+petstore+`, operation: createPet, status: 201, headers: {Location: /pets/10, content-type: application/vnd.pet+json}}
  - name: missing
    paths: ["/pets/"]
    mock: {openapi: `+petstore+`, operation: showPetById, status: 404}
    policies:
      request-validation: {spec: `+petstore+`, operation: showPetById}
  - name: static
    paths: ["=/ping"]
    mock: {status: 200, headers: {Content-Type: application/json}, body: '{"pong":true}'}
`, nil)
	for _, c := range []struct {
		method, path string
		status       int
		headers      map[string]string
		body         string
	}{
		{"GET", "/pets", 200, map[string]string{"Content-Type": "application/json", "X-Total-Count": "2"},
			`[{"id":1,"name":"Rex","tag":"dog"},{"id":2,"name":"Tom","tag":"cat"}]`},
		// The route's own headers go over the example's.
		{"POST", "/pets", 201, map[string]string{"Content-Type": "application/vnd.pet+json", "Location": "/pets/10"},
			`{"id":10,"name":"Rex","tag":"dog"}`},
		{"GET", "/pets/3", 404, map[string]string{"Content-Type": "text/plain"}, `no such pet`},
		// A mock route validates requests like any route.
		{"GET", "/pets/0", 400, map[string]string{"Content-Type": "application/json"},
			`{"error":{"status":400,"code":"invalid_request","message":"path parameter \"petId\": must be at least 1","request_id":"`},
		{"GET", "/ping", 200, map[string]string{"Content-Type": "application/json"}, `{"pong":true}`},
	} {
		req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || string(body) != c.body && !(c.status == 400 && strings.HasPrefix(string(body), c.body)) {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
		for k, v := range c.headers {
			if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s %s: %s: %q, want %q", c.method, c.path, k, got, v)
			}
		}
	}
}

func TestMockSettingsErrors(t *testing.T) {
	for _, c := range []struct{ name, mock, want string }{
		{"unknown operation", `{openapi: ` + petstore + `, operation: showPet}`,
			`t.yaml:4:45: no operation "showPet" in "testdata/petstore.yaml"`},
		{"undocumented status", `{openapi: ` + petstore + `, operation: showPetById, status: 500}`,
			`t.yaml:4:69: operation showPetById documents no response for status 500 (documented: 200, 404)`},
		{"default status not documented", `{openapi: ` + petstore + `, operation: createPet}`,
			`t.yaml:4:5: operation createPet documents no response for status 200 (documented: 201, 400)`},
		{"missing document", `{openapi: testdata/nope.yaml, operation: showPet}`,
			`t.yaml:4:12: cannot read "testdata/nope.yaml": no such file or directory`},
		{"no operation", `{openapi: ` + petstore + `}`,
			`t.yaml:4:12: openapi needs operation`},
		{"operation alone", `{operation: listPets, body: "x"}`,
			`t.yaml:4:12: operation needs openapi`},
		{"body and openapi", `{openapi: ` + petstore + `, operation: listPets, body: "x"}`,
			`t.yaml:4:66: body and openapi exclude each other`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("t.yaml", []byte("routes:\n  - name: m\n    paths: [\"/\"]\n    mock: "+c.mock+"\n"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

// A changed document is read again when a configuration is next applied
// (here: the configuration file gets a new comment).
func TestMockFollowsDocumentChanges(t *testing.T) {
	dir := t.TempDir()
	spec := dir + "/api.json"
	copyFile(t, "testdata/api.json", spec)
	copyFile(t, "testdata/schemas.json", dir+"/schemas.json")
	cfg := gatewaytest.Server + `
routes:
  - name: pet
    paths: ["/pets/"]
    mock: {openapi: ` + spec + `, operation: getPet}
`
	g := gatewaytest.Start(t, cfg, nil)
	get := func() string {
		t.Helper()
		resp, err := http.Get(g.URL + "/pets/1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != `{"id":3,"name":"Rex"}` {
		t.Fatalf("before: %s", got)
	}
	if err := os.WriteFile(dir+"/schemas.json", []byte(`{"Pet": {"type": "object", "properties": {"id": {"type": "integer", "example": 4}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	g.Reload(t, cfg+"# the document changed\n")
	if got := get(); got != `{"id":4}` {
		t.Errorf("after: %s", got)
	}
}
