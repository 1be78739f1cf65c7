package openapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/openapi"
)

// The imported routes, as printed, serve the API: each operation reaches
// the backend when the request fits the document, and is refused at the
// gateway when it does not.
func TestImportedRoutesServe(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, r.Method+" "+r.URL.RequestURI())
	}))
	t.Cleanup(backend.Close)
	routes := generate(t, load(t, petstore), openapi.ImportOptions{Service: "pets"})
	g := gatewaytest.Start(t, gatewaytest.Server+`
services:
  - name: pets
    targets: [{url: "`+backend.URL+`"}]
`+routes, nil)
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/pets?limit=5", "", 200, "GET /pets?limit=5"},
		{"GET", "/pets/7", "", 200, "GET /pets/7"},
		{"DELETE", "/pets/7", "", 200, "DELETE /pets/7"},
		{"GET", "/owners/ann/pets/7.json", "", 200, "GET /owners/ann/pets/7.json"},
		{"GET", "/pets?limit=500", "", 400, `query parameter \"limit\": must be at most 100`},
		{"GET", "/pets/0", "", 400, `path parameter \"petId\": must be at least 1`},
		{"GET", "/owners/an/pets/7.json", "", 400, `path parameter \"owner-id\": must be at least 3 characters long`},
		{"POST", "/pets", `{"name":"Rex"}`, 400, `header parameter \"X-Request-Token\": is required`},
		{"PUT", "/pets", "", 404, `no_route`},
	} {
		req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s: %d %s, want %d and %s", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("the backend was called %d times, want 4 (the valid requests only)", n)
	}
}
