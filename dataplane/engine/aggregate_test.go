package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
)

// aggConfig is a configuration with one aggregate route and a service per
// entry of services (name to target URLs).
func aggConfig(route config.Route, services map[string][]string) *config.Config {
	cfg := &config.Config{}
	for name, urls := range services {
		svc := config.Service{Name: name}
		for _, u := range urls {
			svc.Targets = append(svc.Targets, config.Target{URL: u})
		}
		cfg.Services = append(cfg.Services, svc)
	}
	if route.Name == "" {
		route.Name = "agg"
	}
	cfg.Routes = []config.Route{route}
	return cfg
}

// jsonBackend answers every request with body as JSON.
func jsonBackend(t *testing.T, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// aggregateAnswer is a decoded combined answer.
type aggregateAnswer struct {
	resp   *http.Response
	fields map[string]json.RawMessage
	errors map[string]struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
}

func getAggregate(t *testing.T, req *http.Request) aggregateAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	a := aggregateAnswer{resp: resp}
	if err := json.Unmarshal(body, &a.fields); err != nil {
		t.Fatalf("answer is not a JSON object: %q", body)
	}
	if raw, ok := a.fields["_errors"]; ok {
		if err := json.Unmarshal(raw, &a.errors); err != nil {
			t.Fatalf("_errors: %s", raw)
		}
		delete(a.fields, "_errors")
	}
	return a
}

func get(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Both backends hold their answer until both have been called: the
// aggregation can only complete if it calls them at the same time.
func TestAggregateCallsWithoutDependenciesRunInParallel(t *testing.T) {
	arrived := make(chan string, 2)
	release := make(chan struct{})
	barrier := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- name
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				http.Error(w, "never released", 500)
				return
			}
			fmt.Fprintf(w, `{"name":%q}`, name)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := barrier("a"), barrier("b")
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"=/both"}, Aggregate: []config.AggregateCall{
		{Key: "a", Service: "sa", Path: "/a"},
		{Key: "b", Service: "sb", Path: "/b"},
	}}, map[string][]string{"sa": {a.URL}, "sb": {b.URL}}))

	answer := make(chan aggregateAnswer, 1)
	go func() { answer <- getAggregate(t, get(t, gw.url+"/both")) }()
	seen := map[string]bool{}
	for range 2 {
		select {
		case name := <-arrived:
			seen[name] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %v called while the other was still waiting: the calls ran one after the other", seen)
		}
	}
	close(release)
	got := <-answer
	if string(got.fields["a"]) != `{"name":"a"}` || string(got.fields["b"]) != `{"name":"b"}` || len(got.errors) != 0 {
		t.Errorf("answer %v errors %v", got.fields, got.errors)
	}
	if v := got.resp.Header.Get("X-Aggregate-Complete"); v != "true" {
		t.Errorf("X-Aggregate-Complete = %q", v)
	}
}

func TestAggregateCallUsesFieldsOfAnEarlierAnswer(t *testing.T) {
	var profileDone atomic.Bool
	profile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id": 42, "address": {"city": "São Paulo"}}`)
		profileDone.Store(true)
	}))
	defer profile.Close()
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !profileDone.Load() {
			http.Error(w, "called before profile answered", 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"uri": r.RequestURI})
	}))
	defer orders.Close()
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"=/me"}, Aggregate: []config.AggregateCall{
		// Listed first, it still waits for profile.
		{Key: "orders", Service: "orders", Path: "/orders/{profile.address.city}?user={profile.id}"},
		{Key: "profile", Service: "users", Path: "/profile"},
	}}, map[string][]string{"users": {profile.URL}, "orders": {orders.URL}}))

	got := getAggregate(t, get(t, gw.url+"/me"))
	if want := `{"uri":"/orders/S%C3%A3o%20Paulo?user=42"}`; strings.TrimSpace(string(got.fields["orders"])) != want {
		t.Errorf("orders = %s, want %s", got.fields["orders"], want)
	}
	if !strings.Contains(string(got.fields["profile"]), `"id": 42`) {
		t.Errorf("profile = %s", got.fields["profile"])
	}
}

func TestAggregatePathParametersConsumerAndForwardedHeaders(t *testing.T) {
	be := echoBackend(t)
	cfg := aggConfig(config.Route{
		Paths:    []string{"/shops/{shop}/items/{id}", `~^/s/(?P<shop>[^/]+)/i/(?P<id>[0-9]+)$`},
		Policies: config.Policies{"test-user-auth": map[string]any{}},
		Aggregate: []config.AggregateCall{
			{Key: "user", Service: "s", Path: "/users/{consumer}"},
			{Key: "item", Service: "s", Path: "/shops/{shop}/items/{id}"},
		},
	}, map[string][]string{"s": {be.URL}})
	cfg.Consumers = []config.Consumer{{Name: "alice", Groups: []string{"a", "b"}}}
	cfg.Routes = append(cfg.Routes, config.Route{Name: "no-auth", Paths: []string{"/open"}, Aggregate: []config.AggregateCall{
		{Key: "user", Service: "s", Path: "/users/{consumer}"},
	}})
	gw := startGateway(t, cfg)

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req := get(t, gw.url+"/shops/caf%c3%a9/items/7")
	req.Header.Set("X-Test-User", "alice")
	req.Header.Set("X-Request-ID", "client-id-1")
	req.Header.Set("Traceparent", tp)
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("X-Consumer-Name", "root")
	got := getAggregate(t, req)

	var user, item echoed
	json.Unmarshal(got.fields["user"], &user)
	json.Unmarshal(got.fields["item"], &item)
	if user.URI != "/users/alice" || item.URI != "/shops/caf%C3%A9/items/7" {
		t.Errorf("calls went to %q and %q", user.URI, item.URI)
	}
	h := http.Header(user.Header)
	want := map[string]string{
		"X-Consumer-Name":   "alice",
		"X-Consumer-Groups": "a, b",
		"X-Request-Id":      "client-id-1",
		"Traceparent":       tp,
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  gw.addr,
		"Accept":            "application/json",
		"Authorization":     "", // the client's credentials stay at the gateway
	}
	for name, w := range want {
		if v := h.Get(name); v != w {
			t.Errorf("call header %s = %q, want %q", name, v, w)
		}
	}
	if user.Method != "GET" {
		t.Errorf("call method %s", user.Method)
	}

	// Named groups of a regex path are parameters too.
	req = get(t, gw.url+"/s/a%20b/i/9")
	req.Header.Set("X-Test-User", "alice")
	got = getAggregate(t, req)
	json.Unmarshal(got.fields["item"], &item)
	if item.URI != "/shops/a%20b/items/9" {
		t.Errorf("call from a regex path went to %q", item.URI)
	}

	// On a route without authentication {consumer} has no value: the
	// required call cannot be made.
	resp, err := http.DefaultClient.Do(get(t, gw.url+"/open"))
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 401 || ge.Error.Code != "unauthorized" || !strings.Contains(ge.Error.Message, `"user"`) {
		t.Errorf("anonymous: %d %+v", resp.StatusCode, ge)
	}
}

func TestAggregatePassesTheClientQueryToCallsWithoutTheirOwn(t *testing.T) {
	be := echoBackend(t)
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/q"}, Aggregate: []config.AggregateCall{
		{Key: "plain", Service: "s", Path: "/plain"},
		{Key: "own", Service: "s", Path: "/own?x=1"},
	}}, map[string][]string{"s": {be.URL}}))
	got := getAggregate(t, get(t, gw.url+"/q?page=2&q=a%20b"))
	var plain, own echoed
	json.Unmarshal(got.fields["plain"], &plain)
	json.Unmarshal(got.fields["own"], &own)
	if plain.URI != "/plain?page=2&q=a%20b" || own.URI != "/own?x=1" {
		t.Errorf("plain call %q, own-query call %q", plain.URI, own.URI)
	}
}

func TestAggregateListsFailedOptionalCalls(t *testing.T) {
	ok := jsonBackend(t, `{"fine":true}`)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"oops":1}`, 500)
	}))
	defer broken.Close()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>hello</html>")
	}))
	defer html.Close()
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer empty.Close()
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "ok", Service: "ok", Path: "/"},
		{Key: "broken", Service: "broken", Path: "/", Optional: true},
		{Key: "html", Service: "html", Path: "/", Optional: true},
		{Key: "after", Service: "ok", Path: "/x/{broken.id}", Optional: true},
		{Key: "empty", Service: "empty", Path: "/"},
		{Key: "missing", Service: "ok", Path: "/x/{ok.nothing}", Optional: true},
		{Key: "later", Service: "ok", Path: "/y/{after.id}", Optional: true},
	}}, map[string][]string{"ok": {ok.URL}, "broken": {broken.URL}, "html": {html.URL}, "empty": {empty.URL}}))

	got := getAggregate(t, get(t, gw.url+"/"))
	if string(got.fields["ok"]) != `{"fine":true}` || string(got.fields["empty"]) != "null" || len(got.fields) != 2 {
		t.Errorf("fields %v", got.fields)
	}
	want := map[string]struct {
		status int
		frag   string
	}{
		"broken":  {500, "upstream answered 500"},
		"html":    {200, "not JSON"},
		"after":   {424, `needs the answer of "broken"`},
		"missing": {424, "{ok.nothing}"},
		"later":   {424, `needs the answer of "after", which was not made`},
	}
	for key, w := range want {
		e, ok := got.errors[key]
		if !ok || e.Status != w.status || !strings.Contains(e.Error, w.frag) {
			t.Errorf("_errors.%s = %+v, want status %d and %q", key, e, w.status, w.frag)
		}
	}
	if len(got.errors) != len(want) {
		t.Errorf("_errors %v", got.errors)
	}
	if v := got.resp.Header.Get("X-Aggregate-Complete"); v != "false" {
		t.Errorf("X-Aggregate-Complete = %q", v)
	}
}

func TestAggregateFailsWhenARequiredCallFails(t *testing.T) {
	ok := jsonBackend(t, `{"id":1}`)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer broken.Close()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not json") }))
	defer html.Close()
	stuck := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stuck }))
	defer slow.Close()
	defer close(stuck) // before Close, which waits for the handler
	refused := "http://" + testutil.ClosedPort(t)

	for _, tc := range []struct {
		name   string
		calls  []config.AggregateCall
		status int
		code   string
		frag   string
	}{
		{"error status", []config.AggregateCall{{Key: "ok", Service: "ok", Path: "/"}, {Key: "profile", Service: "broken", Path: "/"}},
			502, "upstream_unavailable", `"profile" (service broken): upstream answered 404`},
		{"refused", []config.AggregateCall{{Key: "profile", Service: "refused", Path: "/"}},
			502, "upstream_unavailable", `"profile" (service refused): the upstream service is unavailable`},
		{"not JSON", []config.AggregateCall{{Key: "page", Service: "html", Path: "/"}},
			502, "upstream_unavailable", `"page" (service html): answer is not JSON`},
		{"timeout", []config.AggregateCall{{Key: "ok", Service: "ok", Path: "/"}, {Key: "slow", Service: "slow", Path: "/", Timeout: config.Duration(50 * time.Millisecond)}},
			504, "upstream_timeout", `"slow" (service slow): the upstream service did not answer in time`},
		{"needs a failed optional call", []config.AggregateCall{{Key: "a", Service: "broken", Path: "/", Optional: true}, {Key: "b", Service: "ok", Path: "/{a.id}"}},
			502, "upstream_unavailable", `"b" (service ok): not made: it needs the answer of "a", which failed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: tc.calls},
				map[string][]string{"ok": {ok.URL}, "broken": {broken.URL}, "html": {html.URL}, "slow": {slow.URL}, "refused": {refused}}))
			resp, err := http.DefaultClient.Do(get(t, gw.url+"/"))
			if err != nil {
				t.Fatal(err)
			}
			ge := decodeError(t, resp)
			if resp.StatusCode != tc.status || ge.Error.Code != tc.code || !strings.Contains(ge.Error.Message, tc.frag) {
				t.Errorf("%d %+v, want %d %s containing %q", resp.StatusCode, ge.Error, tc.status, tc.code, tc.frag)
			}
			if v := resp.Header.Get("X-Aggregate-Complete"); v != "false" {
				t.Errorf("X-Aggregate-Complete = %q", v)
			}
		})
	}
}

// Once a required call has failed the answer is settled: the client gets it
// without waiting for calls still running.
func TestAggregateAnswersWithoutWaitingForCallsThatNoLongerMatter(t *testing.T) {
	release := make(chan struct{})
	called := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		<-release
		io.WriteString(w, "{}")
	}))
	defer slow.Close()
	defer close(release)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-called // the slow call is under way
		w.WriteHeader(500)
	}))
	defer failing.Close()
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "slow", Service: "slow", Path: "/", Optional: true},
		{Key: "needed", Service: "failing", Path: "/"},
	}}, map[string][]string{"slow": {slow.URL}, "failing": {failing.URL}}))

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(gw.url + "/")
	if err != nil {
		t.Fatalf("the answer waited for the slow call: %v", err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 502 || !strings.Contains(ge.Error.Message, `"needed"`) {
		t.Errorf("%d %+v", resp.StatusCode, ge)
	}
}

func TestAggregateCallsRetryOnAnotherTarget(t *testing.T) {
	ok := jsonBackend(t, `{"ok":true}`)
	refused := "http://" + testutil.ClosedPort(t)
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "a", Service: "s", Path: "/"},
	}}, map[string][]string{"s": {refused, ok.URL}}))
	// Round robin sends every other first attempt to the refused target.
	for i := range 6 {
		got := getAggregate(t, get(t, gw.url+"/"))
		if string(got.fields["a"]) != `{"ok":true}` {
			t.Fatalf("request %d: %v %v", i, got.fields, got.errors)
		}
	}
}

func TestAggregateCallsGoThroughTheCircuitBreaker(t *testing.T) {
	var calls atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(500)
	}))
	defer failing.Close()
	ok := jsonBackend(t, `1`)
	cfg := aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "ok", Service: "ok", Path: "/"},
		{Key: "flaky", Service: "flaky", Path: "/", Optional: true},
	}}, map[string][]string{"ok": {ok.URL}, "flaky": {failing.URL}})
	for i := range cfg.Services {
		if cfg.Services[i].Name == "flaky" {
			cfg.Services[i].CircuitBreaker = &config.CircuitBreaker{ErrorRatio: 0.5, MinRequests: 5,
				Window: config.Duration(10 * time.Second), OpenFor: config.Duration(time.Minute)}
		}
	}
	gw := startGateway(t, cfg)
	for range 5 {
		if got := getAggregate(t, get(t, gw.url+"/")); got.errors["flaky"].Status != 500 {
			t.Fatalf("breaker closed: %+v", got.errors)
		}
	}
	got := getAggregate(t, get(t, gw.url+"/"))
	if e := got.errors["flaky"]; e.Status != 503 || !strings.Contains(e.Error, "circuit breaker open") || string(got.fields["ok"]) != "1" {
		t.Errorf("breaker open: %v %+v", got.fields, got.errors)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("failing service called %d times, want 5 (then the breaker holds the calls)", n)
	}
}

func TestAggregateBoundsEachAnswer(t *testing.T) {
	big := `"` + strings.Repeat("a", maxCallBody) + `"`
	sized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		io.WriteString(w, big)
	}))
	defer sized.Close()
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(big); i += 1 << 20 {
			io.WriteString(w, big[i:min(i+1<<20, len(big))])
			w.(http.Flusher).Flush()
		}
	}))
	defer chunked.Close()
	fits := jsonBackend(t, `"`+strings.Repeat("a", maxCallBody-2)+`"`)
	cfg := aggConfig(config.Route{Paths: []string{"/big"}, Aggregate: []config.AggregateCall{
		{Key: "sized", Service: "sized", Path: "/", Optional: true},
		{Key: "chunked", Service: "chunked", Path: "/", Optional: true},
	}}, map[string][]string{"sized": {sized.URL}, "chunked": {chunked.URL}, "fits": {fits.URL}})
	cfg.Routes = append(cfg.Routes, config.Route{Name: "fits", Paths: []string{"/fits"}, Aggregate: []config.AggregateCall{
		{Key: "fits", Service: "fits", Path: "/"},
	}})
	gw := startGateway(t, cfg)
	for range 2 { // the connections dropped after a cut-off answer are not reused
		got := getAggregate(t, get(t, gw.url+"/big"))
		for _, key := range []string{"sized", "chunked"} {
			if e := got.errors[key]; e.Status != 200 || !strings.Contains(e.Error, "larger than 8 MiB") {
				t.Errorf("%s: %+v", key, e)
			}
		}
	}
	got := getAggregate(t, get(t, gw.url+"/fits"))
	if len(got.fields["fits"]) != maxCallBody {
		t.Errorf("an answer of exactly the limit was cut: %d bytes", len(got.fields["fits"]))
	}
}

func TestAggregateAnswersGetAndHeadOnly(t *testing.T) {
	ok := jsonBackend(t, `{}`)
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "a", Service: "s", Path: "/"},
	}}, map[string][]string{"s": {ok.URL}}))
	resp, err := http.Post(gw.url+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 405 || ge.Error.Code != "method_not_allowed" || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %+v Allow %q", resp.StatusCode, ge, resp.Header.Get("Allow"))
	}
	resp, err = http.Head(gw.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Aggregate-Complete") != "true" {
		t.Errorf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAggregateCallsH2CServices(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"proto":%q,"uri":%q}`, r.Proto, r.RequestURI)
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Start()
	defer be.Close()
	gw := startGateway(t, aggConfig(config.Route{Paths: []string{"/"}, Aggregate: []config.AggregateCall{
		{Key: "grpcish", Service: "s", Path: "/x?y=1"},
	}}, map[string][]string{"s": {strings.Replace(be.URL, "http://", "h2c://", 1)}}))
	got := getAggregate(t, get(t, gw.url+"/"))
	if want := `{"proto":"HTTP/2.0","uri":"/x?y=1"}`; string(got.fields["grpcish"]) != want {
		t.Errorf("h2c call: %s %v, want %s", got.fields["grpcish"], got.errors, want)
	}
}
