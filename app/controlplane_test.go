package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testutil"
)

func adminDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin API and the file feed one configuration: a route added through
// the API serves at once, survives a change of the file, and a restart (the
// store keeps it); a change the gateway would refuse is refused by the API.
func TestAdminAPIAndFileTogether(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	defer be.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	cfg := func(routePath string) string {
		return strings.Replace(gatewayConfig("off", be.URL, routePath), "logging:", "admin: {tokens: [{name: ops, token: s3cret, role: admin}]}\nlogging:", 1)
	}
	writeConfig(t, path, cfg("/v1"))
	a := startApp(t, path)
	proxy, api := "http://"+a.ProxyAddr(), "http://"+a.AdminAddr()+"/api"

	if code, _ := adminDo(t, "GET", api+"/routes", "", ""); code != 401 {
		t.Errorf("admin API without a token: %d", code)
	}
	code, body := adminDo(t, "POST", api+"/routes", "s3cret", `{"name":"orders","paths":["/orders"],"service":"be"}`)
	if code != 201 {
		t.Fatalf("create route: %d %s", code, body)
	}
	// The change is served before the API answers.
	if s := status(t, proxy+"/orders/1"); s != 200 {
		t.Errorf("API route: %d", s)
	}
	if a.Version() != 2 {
		t.Errorf("version %d after the API change, want 2", a.Version())
	}

	writeConfig(t, path, cfg("/v2"))
	testutil.Eventually(t, 5*time.Second, "the file's new route", func() bool { return status(t, proxy+"/v2/x") == 200 })
	if s := status(t, proxy+"/orders/1"); s != 200 {
		t.Errorf("API route after a file change: %d", s)
	}

	// A route the gateway could not compile never gets stored.
	code, body = adminDo(t, "POST", api+"/services", "s3cret", `{"name":"mixed","targets":[{"url":"http://127.0.0.1:1"},{"url":"h2c://127.0.0.1:2"}]}`)
	if code != 400 || !strings.Contains(body, "cannot be mixed") {
		t.Errorf("a service the data plane refuses: %d %s", code, body)
	}

	code, body = adminDo(t, "GET", api+"/config/versions", "s3cret", "")
	var vs struct{ Data []struct{ Actor string } }
	json.Unmarshal([]byte(body), &vs)
	if code != 200 || len(vs.Data) < 3 || vs.Data[len(vs.Data)-1].Actor != "file" {
		t.Errorf("versions: %d %s", code, body)
	}

	// Restarted on the same store, the API's route is still there.
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := startApp(t, path)
	if s := status(t, "http://"+b.ProxyAddr()+"/orders/1"); s != 200 {
		t.Errorf("API route after a restart: %d", s)
	}
}

// A key created through the admin API opens a key-auth route at once, as its
// consumer, and stops working when revoked.
func TestAdminAPIKeysAuthenticate(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Consumer-Name"))
	}))
	defer be.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, strings.Replace(gatewayConfig("off", be.URL, "/"), "logging:",
		"admin: {tokens: [{name: ops, token: s3cret, role: admin}]}\nconsumers: [{name: alice}]\npolicies: {key-auth: {}}\nlogging:", 1))
	a := startApp(t, path)
	proxy, api := "http://"+a.ProxyAddr(), "http://"+a.AdminAddr()+"/api"

	code, body := adminDo(t, "POST", api+"/consumers/alice/keys", "s3cret", "")
	var key struct{ ID, Key string }
	if err := json.Unmarshal([]byte(body), &key); code != 201 || err != nil || key.Key == "" {
		t.Fatalf("create key: %d %s", code, body)
	}
	call := func() (int, string) {
		req, _ := http.NewRequest("GET", proxy+"/x", nil)
		req.Header.Set("apikey", key.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, who := call(); code != 200 || who != "alice" {
		t.Fatalf("with the new key: %d %q, want 200 as alice", code, who)
	}
	if code, _ := adminDo(t, "DELETE", api+"/consumers/alice/keys/"+key.ID, "s3cret", ""); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := call(); code != 401 {
		t.Errorf("with the revoked key: %d, want 401", code)
	}
}
