package aggregate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// The aggregation route of the configuration reference, through the whole
// gateway: key-auth finds the consumer, whose profile is fetched first, then
// its orders by the profile's id.
func TestMeDashboardThroughTheGateway(t *testing.T) {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Apikey") != "" {
			http.Error(w, "the client's key reached a backend", 500)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/users/")
		json.NewEncoder(w).Encode(map[string]string{"id": "u-" + name, "name": name})
	}))
	defer users.Close()
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"user":"`+r.URL.Query().Get("user")+`","total":12}]`)
	}))
	defer orders.Close()

	g := gatewaytest.Start(t, gatewaytest.Server+`
services:
  - {name: users, targets: [{url: "`+users.URL+`"}]}
  - {name: orders, targets: [{url: "`+orders.URL+`"}]}
routes:
  - name: me-dashboard
    paths: ["=/me"]
    aggregate:
      - {key: profile, service: users, path: "/users/{consumer}"}
      - {key: orders,  service: orders, path: "/orders?user={profile.id}", optional: true}
    policies:
      key-auth: {}
consumers:
  - name: alice
    credentials:
      key-auth: [{key: alice-key}]
`, nil)

	req, _ := http.NewRequest("GET", g.URL+"/me", nil)
	req.Header.Set("apikey", "alice-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"profile":{"id":"u-alice","name":"alice"},"orders":[{"user":"u-alice","total":12}]}` + "\n"
	if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("X-Aggregate-Complete") != "true" {
		t.Errorf("%d %s\nwant %s", resp.StatusCode, body, want)
	}

	resp, err = http.Get(g.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a key: %d", resp.StatusCode)
	}
}
