package cache_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy/cache"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// twoRoutes is a gateway with cached routes "a" (/a) and "b" (/b).
func twoRoutes(target string) string {
	return gatewaytest.Server + adminTokens + fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - {name: a, paths: ["/a"], service: be, policies: {cache: {}}}
  - {name: b, paths: ["/b"], service: be, policies: {cache: {}}}
`, target)
}

// purge calls the admin API's purge with token; it returns the status and
// the count purged.
func purge(t *testing.T, g *gatewaytest.Gateway, path, token string) (int, int) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", g.AdminURL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Purged int }
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Purged
}

func TestPurgeThroughTheAdminAPI(t *testing.T) {
	b := countingBackend(t)
	g := start(t, twoRoutes(b.URL), nil)
	fill := func() {
		for _, p := range []string{"/a/1", "/a/2?x=1", "/b/1"} {
			get(t, g.URL+p)
		}
	}
	fill()
	for _, p := range []string{"/a/1", "/a/2?x=1", "/b/1"} {
		expect(t, p+" stored", get(t, g.URL+p), "HIT", "")
	}

	if code, _ := purge(t, g, "/api/cache/a", ""); code != 401 {
		t.Errorf("without a token: %d", code)
	}
	if code, _ := purge(t, g, "/api/cache/a", "viewer-secret"); code != 403 {
		t.Errorf("viewer: %d", code)
	}
	if code, n := purge(t, g, "/api/cache/a?key="+url.QueryEscape("/a/2?x=1"), "ops-secret"); code != 200 || n != 1 {
		t.Errorf("purge one resource: %d purged %d, want 200 and 1", code, n)
	}
	expect(t, "purged resource", get(t, g.URL+"/a/2?x=1"), "MISS", "")
	expect(t, "its neighbour", get(t, g.URL+"/a/1"), "HIT", "")

	if code, n := purge(t, g, "/api/cache/a", "ops-secret"); code != 200 || n != 2 {
		t.Errorf("purge route a: %d purged %d, want 200 and 2", code, n)
	}
	expect(t, "route a", get(t, g.URL+"/a/1"), "MISS", "")
	expect(t, "route b", get(t, g.URL+"/b/1"), "HIT", "")

	if code, n := purge(t, g, "/api/cache", "ops-secret"); code != 200 || n != 2 {
		t.Errorf("purge all: %d purged %d, want 200 and 2 (a/1 stored again, b/1)", code, n)
	}
	expect(t, "route b after purging all", get(t, g.URL+"/b/1"), "MISS", "")
	if code, _ := purge(t, g, "/api/cache/nope", "ops-secret"); code != 404 {
		t.Errorf("unknown route: %d", code)
	}
}

// A purge of one resource takes every variant, and may name the host.
func TestPurgeKeyWithHost(t *testing.T) {
	b := countingBackend(t, "Vary", "Accept")
	g := start(t, gatewayConfig(b.URL, "{}"), nil)
	for _, host := range []string{"a.example.com", "b.example.com"} {
		for _, accept := range []string{"text/html", "application/json"} {
			get(t, g.URL+"/doc", "Host", host, "Accept", accept)
		}
	}
	if code, n := purge(t, g, "/api/cache/api?key="+url.QueryEscape("//A.example.com/doc"), "ops-secret"); code != 200 || n != 2 {
		t.Errorf("purge on one host: %d purged %d, want 200 and 2", code, n)
	}
	expect(t, "purged host", get(t, g.URL+"/doc", "Host", "a.example.com", "Accept", "text/html"), "MISS", "")
	expect(t, "other host", get(t, g.URL+"/doc", "Host", "b.example.com", "Accept", "text/html"), "HIT", "")
	if code, n := purge(t, g, "/api/cache/api?key=/doc", "ops-secret"); code != 200 || n != 3 {
		t.Errorf("purge on every host: %d purged %d, want 200 and 3", code, n)
	}
}

func TestPurgeArguments(t *testing.T) {
	if _, err := cache.Purge("api", "POST", "", "/x"); !errors.Is(err, cache.ErrMethod) {
		t.Errorf("POST: %v, want ErrMethod", err)
	}
	for _, key := range []string{"x", "//"} {
		if _, err := cache.AdminPurge("api", key); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	// A path the gateway would refuse was never stored: nothing to purge.
	if n, err := cache.Purge("api", "GET", "", "/a%2Fb"); n != 0 || err != nil {
		t.Errorf("refused path: %d, %v", n, err)
	}
}
