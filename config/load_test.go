package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadContractExample(t *testing.T) {
	t.Setenv("TOLLGATE_ADMIN_TOKEN", "admin-secret")
	t.Setenv("ALICE_KEY", "alice-key")
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"admin token from env", c.Admin.Tokens[0].Token, "admin-secret"},
		{"consumer key from env", c.Consumers[0].Credentials.KeyAuth[0].Key, "alice-key"},
		{"tls listen", c.Server.TLS.Listen, ":8443"},
		{"trusted proxies", c.Server.TrustedProxies, []string{"10.0.0.0/8"}},
		{"cluster", c.Cluster, Cluster{Listen: ":8005", ControlPlane: "https://cp:8005", Token: "...", CacheDir: "dp-cache"}},
		{"sample ratio", *c.Tracing.SampleRatio, 1.0},
		{"target weight", *c.Services[0].Targets[0].Weight, 1},
		{"defaulted weight", *c.Services[1].Targets[0].Weight, 1},
		{"response timeout", c.Services[0].Timeouts.Response.D(), 30 * time.Second},
		{"active health timeout default", c.Services[0].HealthCheck.Active.Timeout.D(), 2 * time.Second},
		{"passive statuses", c.Services[0].HealthCheck.Passive.UnhealthyStatuses, []int{502, 503, 504}},
		{"breaker", *c.Services[0].CircuitBreaker, CircuitBreaker{ErrorRatio: 0.5, MinRequests: 20, Window: Duration(10 * time.Second), OpenFor: Duration(30 * time.Second)}},
		{"methods", c.Routes[0].Methods, []string{"GET", "POST"}},
		{"route headers", c.Routes[0].Headers, map[string]string{"X-Api-Version": "2"}},
		{"route policies", c.Routes[0].Policies, Policies{"key-auth": map[string]any{}, "rate-limit": map[string]any{"limit": 100, "window": "1m", "per": "consumer"}}},
		{"aggregate", c.Routes[1].Aggregate[1], AggregateCall{Key: "orders", Service: "orders", Path: "/orders?user={profile.id}", Optional: true}},
		{"mock", *c.Routes[2].Mock, Mock{Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"pong":true}`}},
		{"plan price", *c.Plans[0].Price, Price{Amount: 4900, Currency: "usd", Period: "month"}},
		{"global policies", c.Policies, Policies{}},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
}

func TestLoadReportsUnsetVariableFromTheProcessEnvironment(t *testing.T) {
	t.Setenv("TOLLGATE_ADMIN_TOKEN", "x")
	os.Unsetenv("ALICE_KEY") // t.Setenv above restores the environment afterwards
	_, err := Load("testdata/full.yaml")
	wantProblems(t, err, []problem{{"testdata/full.yaml:54:24", "environment variable ALICE_KEY is not set"}})
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("err = %v, want one %q problem without position", err, path)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"HOST": "db.internal", "EMPTY": "", "PORT": "8080", "YAML": "{a: 1}\nb: [2]", "ON": "false", "RATIO": "0.25"}
	tests := []struct {
		name  string
		yaml  string
		check func(c *Config) (got, want any)
	}{
		{
			name:  "set variable inside a string",
			yaml:  `store: "postgres://${HOST}:5432/tollgate"`,
			check: func(c *Config) (any, any) { return c.Store, "postgres://db.internal:5432/tollgate" },
		},
		{
			name:  "default for unset variable",
			yaml:  `store: "${NOT_SET_HERE:-memory://}"`,
			check: func(c *Config) (any, any) { return c.Store, "memory://" },
		},
		{
			name:  "default for empty variable",
			yaml:  `cluster: {token: "${EMPTY:-fallback}"}`,
			check: func(c *Config) (any, any) { return c.Cluster.Token, "fallback" },
		},
		{
			name:  "empty variable without default stays empty",
			yaml:  `cluster: {token: "a${EMPTY}b"}`,
			check: func(c *Config) (any, any) { return c.Cluster.Token, "ab" },
		},
		{
			name:  "escaped reference is literal",
			yaml:  `cluster: {token: "$${HOST} and $HOST"}`,
			check: func(c *Config) (any, any) { return c.Cluster.Token, "${HOST} and $HOST" },
		},
		{
			name:  "expansion cannot inject YAML structure",
			yaml:  `cluster: {token: "${YAML}"}`,
			check: func(c *Config) (any, any) { return c.Cluster.Token, "{a: 1}\nb: [2]" },
		},
		{
			name:  "keys are never expanded",
			yaml:  `policies: {cors: {"${HOST}": "${PORT}"}}`,
			check: func(c *Config) (any, any) { return c.Policies["cors"], map[string]any{"${HOST}": "8080"} },
		},
		{
			name: "numbers, booleans and durations from the environment",
			yaml: `{server: {limits: {max_header_bytes: "${PORT}"}, idle_timeout: "${DUR:-90s}"}, tracing: {sample_ratio: "${RATIO}"}, routes: [{name: r, paths: [/], mock: {}, websocket: "${ON}"}]}`,
			check: func(c *Config) (any, any) {
				return []any{c.Server.Limits.MaxHeaderBytes, c.Server.IdleTimeout.D(), *c.Tracing.SampleRatio, *c.Routes[0].WebSocket},
					[]any{8080, 90 * time.Second, 0.25, false}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("c.yaml", []byte(tt.yaml), envMap(env))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestErrorsAreSortedByLineThenColumn(t *testing.T) {
	// Decode errors, duplicate keys and semantic errors are found in
	// different passes; the result must still read top to bottom.
	_, err := parse("c.yaml", []byte(lines(
		`routes:`,
		`  - {name: r, paths: [x], service: nope, bogus: 1}`,
		`services:`,
		`  - {name: s, targets: [{url: "ftp://h"}], retries: {attempts: 0}}`,
		`store: "x://"`,
		`store: "y://"`,
	)), envMap(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	if len(es) < 6 {
		t.Fatalf("want at least 6 problems, got:\n%v", err)
	}
	for i := 1; i < len(es); i++ {
		a, b := es[i-1], es[i]
		if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
			t.Errorf("problem %d (%s) comes after problem %d (%s)", i-1, a, i, b)
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(es) {
		t.Errorf("Error() has %d lines for %d problems", len(lines), len(es))
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "a.yaml", Line: 3, Col: 7, Path: "routes[0].service", Msg: "boom"}, "a.yaml:3:7: boom"},
		{&Error{File: "a.yaml", Msg: "cannot read"}, "a.yaml: cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Errors{tests[0].err, tests[1].err}).Error(); got != "a.yaml:3:7: boom\na.yaml: cannot read" {
		t.Errorf("Errors.Error() = %q", got)
	}
}

func TestErrorCarriesItsPath(t *testing.T) {
	_, err := parse("c.yaml", []byte(lines(
		`routes:`,
		`  - {name: r, paths: [/], service: nope}`,
	)), envMap(nil))
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Path != "routes[0].service" {
		t.Fatalf("err = %#v, want one problem at path routes[0].service", err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Services != nil || c.Routes != nil || c.Server.TLS != nil {
		t.Errorf("Default() has entities or tls: %+v", c)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"proxy_listen", c.Server.ProxyListen, ":8000"},
		{"admin_listen", c.Server.AdminListen, "127.0.0.1:8001"},
		{"max_header_bytes", c.Server.Limits.MaxHeaderBytes, 16384},
		{"max_body_bytes", c.Server.Limits.MaxBodyBytes, int64(10485760)},
		{"max_concurrent_requests", c.Server.Limits.MaxConcurrentRequests, 0},
		{"read_header_timeout", c.Server.ReadHeaderTimeout.D(), 10 * time.Second},
		{"idle_timeout", c.Server.IdleTimeout.D(), 60 * time.Second},
		{"drain_timeout", c.Server.DrainTimeout.D(), 30 * time.Second},
		{"store", c.Store, "sqlite://tollgate.db"},
		{"cluster.listen", c.Cluster.Listen, ":8005"},
		{"cluster.cache_dir", c.Cluster.CacheDir, "dp-cache"},
		{"access_log", c.Logging.AccessLog, "stdout"},
		{"format", c.Logging.Format, "json"},
		{"sample_ratio", *c.Tracing.SampleRatio, 1.0},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
}

func TestApplyDefaultsFillsEntitiesAndIsIdempotent(t *testing.T) {
	zero := 0
	c := &Config{
		Server: Server{TLS: &TLS{}},
		Services: []Service{{
			Name:           "s",
			Targets:        []Target{{URL: "http://127.0.0.1:1"}},
			HealthCheck:    HealthCheck{Active: &ActiveHealthCheck{}, Passive: &PassiveHealthCheck{}},
			CircuitBreaker: &CircuitBreaker{},
			Retries:        Retries{Attempts: &zero},
		}},
		Routes: []Route{{Name: "r", Hosts: []string{"API.Example.COM"}, Methods: []string{"get"}, Mock: &Mock{}}},
	}
	c.ApplyDefaults()
	s, r := c.Services[0], c.Routes[0]
	want := Service{
		Name:           "s",
		Targets:        []Target{{URL: "http://127.0.0.1:1", Weight: ptr(1)}},
		Balancing:      "round_robin",
		Timeouts:       Timeouts{Connect: Duration(2 * time.Second), Response: Duration(30 * time.Second)},
		Retries:        Retries{Attempts: ptr(0)}, // explicit values are kept, even invalid ones
		HealthCheck:    HealthCheck{Active: &ActiveHealthCheck{Path: "/healthz", Interval: Duration(5 * time.Second), Timeout: Duration(2 * time.Second), HealthyThreshold: 2, UnhealthyThreshold: 3}, Passive: &PassiveHealthCheck{UnhealthyStatuses: []int{502, 503, 504}, UnhealthyThreshold: 5, Cooldown: Duration(30 * time.Second)}},
		CircuitBreaker: &CircuitBreaker{ErrorRatio: 0.5, MinRequests: 20, Window: Duration(10 * time.Second), OpenFor: Duration(30 * time.Second)},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("service = %+v\nwant %+v", s, want)
	}
	if c.Server.TLS.Listen != ":8443" || r.Hosts[0] != "api.example.com" || r.Methods[0] != "GET" || !*r.WebSocket || r.Mock.Status != 200 {
		t.Errorf("tls %+v route %+v", c.Server.TLS, r)
	}
	if a := (&Config{Services: []Service{{}}}); true {
		a.ApplyDefaults()
		if *a.Services[0].Retries.Attempts != 2 {
			t.Errorf("retries default = %d, want 2", *a.Services[0].Retries.Attempts)
		}
	}
	again := *c
	again.ApplyDefaults()
	if !reflect.DeepEqual(&again, c) {
		t.Errorf("ApplyDefaults is not idempotent")
	}
}

func ptr[T any](v T) *T { return &v }

func TestRegistry(t *testing.T) {
	if got, want := PolicyNames(), []string{"cors", "key-auth", "rate-limit", "test-path-joining"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyNames() = %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("registering a name twice did not panic")
		}
	}()
	RegisterPolicy("cors", nil)
}

func TestPolicyErrorPathsAreJoined(t *testing.T) {
	// Relative paths may be empty (the settings as a whole) or start with
	// an index.
	const name = "test-path-joining"
	c := Default()
	c.Policies = Policies{name: map[string]any{}}
	var got []string
	for _, fe := range c.Validate() {
		got = append(got, fe.Path)
	}
	want := []string{"policies." + name, "policies." + name + "[1]", "policies." + name + ".a.b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %v, want %v", got, want)
	}
}

func TestDocumentedExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "## Complete example")
	if !ok {
		t.Fatal("docs/configuration.md has no complete example")
	}
	_, example, _ = strings.Cut(example, "```yaml\n")
	example, _, _ = strings.Cut(example, "```")
	env := map[string]string{
		"TOLLGATE_ADMIN_TOKEN": "a", "TOLLGATE_VIEWER_TOKEN": "v", "CLUSTER_TOKEN": "c",
		"ALICE_KEY": "k", "ALICE_PASSWORD": "p", "ALICE_JWT_SECRET": "s",
	}
	c, err := parse("configuration.md", []byte(example), envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 2 || len(c.Routes) != 3 || c.Store != DefaultStore {
		t.Errorf("example decoded to %d services, %d routes, store %q", len(c.Services), len(c.Routes), c.Store)
	}
}
