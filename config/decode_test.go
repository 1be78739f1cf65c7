package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseReportsEveryDecodeProblemAtItsPosition(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []problem
	}{
		{
			name: "unknown top-level key with suggestion",
			yaml: lines(
				`servr:`,
				`  proxy_listen: ":8000"`,
			),
			want: []problem{{at(1, 1), `unknown field "servr"; did you mean "server"?`}},
		},
		{
			name: "unknown nested key",
			yaml: lines(
				`server:`,
				`  limits:`,
				`    max_body_byte: 10`,
			),
			want: []problem{{at(3, 5), `unknown field "max_body_byte"; did you mean "max_body_bytes"?`}},
		},
		{
			name: "unknown key in a list item, all of them, without a far-fetched suggestion",
			yaml: lines(
				`services:`,
				`  - name: users`,
				`    targets: [{url: "http://127.0.0.1:9001", wieght: 2}]`,
				`    zzzzzz: 1`,
				`routes:`,
				`  - name: r`,
				`    paths: [/a]`,
				`    servce: users`,
			),
			want: []problem{
				{at(3, 46), `unknown field "wieght"; did you mean "weight"?`},
				{at(4, 5), `unknown field "zzzzzz"`},
				{at(6, 5), "route needs one of service, aggregate or mock"},
				{at(8, 5), `unknown field "servce"; did you mean "service"?`},
			},
		},
		{
			name: "type errors are all reported at their keys",
			yaml: lines(
				`server:`,
				`  limits:`,
				`    max_header_bytes: lots`,
				`    max_body_bytes: [1]`,
				`  read_header_timeout: 5 s`,
				`  idle_timeout: 30`,
				`tracing: {sample_ratio: high}`,
				`routes:`,
				`  - name: r`,
				`    paths: /a`,
				`    mock: {status: 200}`,
				`    strip_path: yes please`,
			),
			want: []problem{
				{at(3, 5), `expected an integer, got string "lots"`},
				{at(4, 5), "expected an integer, got a list"},
				{at(5, 3), `invalid duration "5 s"`},
				{at(6, 3), `invalid duration "30"`},
				{at(7, 11), `expected a number, got string "high"`},
				{at(10, 5), "expected a list, got string"},
				{at(12, 5), "expected true or false"},
			},
		},
		{
			name: "mapping where a string is expected",
			yaml: lines(
				`store: {url: x}`,
			),
			want: []problem{{at(1, 1), "expected a string, got a mapping"}},
		},
		{
			name: "integer out of range",
			yaml: lines(
				`server: {limits: {max_header_bytes: 99999999999999999999}}`,
			),
			want: []problem{{at(1, 19), "expected an integer"}},
		},
		{
			name: "number out of range",
			yaml: lines(
				`tracing: {sample_ratio: 1e999}`,
			),
			want: []problem{{at(1, 11), `expected a number, got string "1e999"`}},
		},
		{
			name: "duplicate keys, each one",
			yaml: lines(
				`store: "memory://"`,
				`redis: ""`,
				`store: "sqlite://a.db"`,
				`logging:`,
				`  format: json`,
				`  format: json`,
			),
			want: []problem{
				{at(3, 1), `duplicate key "store" (first at line 1)`},
				{at(6, 3), `duplicate key "format" (first at line 5)`},
			},
		},
		{
			name: "unset variable is reported at the value",
			yaml: lines(
				`admin:`,
				`  tokens:`,
				`    - {name: ops, role: admin, token: "${NOT_SET_ANYWHERE}"}`,
			),
			want: []problem{{at(3, 39), "environment variable NOT_SET_ANYWHERE is not set"}},
		},
		{
			name: "malformed variable reference",
			yaml: lines(
				`store: "sqlite://${1BAD}.db"`,
				`redis: "redis://${HOST"`,
			),
			want: []problem{
				{at(1, 8), "invalid environment variable reference ${1BAD}"},
				{at(2, 8), "unterminated ${"},
			},
		},
		{
			name: "variable that does not fit the field's type",
			yaml: lines(
				`server: {limits: {max_body_bytes: "${SIZE}"}}`,
			),
			env:  map[string]string{"SIZE": "10MB"},
			want: []problem{{at(1, 19), `expected an integer, got "10MB" (from the environment)`}},
		},
		{
			name: "policy settings must be a mapping or null",
			yaml: lines(
				`policies:`,
				`  cors: true`,
			),
			want: []problem{{at(2, 3), "policy settings must be a mapping or null"}},
		},
		{
			name: "syntax error",
			yaml: lines(
				`server:`,
				`  proxy_listen: ":8000`,
			),
			want: []problem{{at(2, 17), "could not find end character of double-quoted text"}},
		},
		{
			name: "more than one document",
			yaml: lines(
				`store: "memory://"`,
				`---`,
				`store: "memory://"`,
			),
			want: []problem{{at(3, 1), "only one YAML document"}},
		},
		{
			name: "top level must be a mapping",
			yaml: lines(`- a`),
			want: []problem{{at(1, 1), "expected a mapping, got a list"}},
		},
		{
			name: "alias to itself",
			yaml: lines(
				`policies:`,
				`  cors: &loop {inner: *loop}`,
			),
			want: []problem{{at(2, 23), "alias *loop refers to itself"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse("c.yaml", []byte(tt.yaml), envMap(tt.env))
			if cfg != nil {
				t.Errorf("got a config, want none")
			}
			wantProblems(t, err, tt.want)
		})
	}
}

func TestParseAcceptsYAMLConveniences(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "empty file gives the defaults",
			yaml: "",
			check: func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c, Default()) {
					t.Errorf("got %+v, want Default()", c)
				}
			},
		},
		{
			name: "null sections are unset",
			yaml: lines(`server:`, `services:`),
			check: func(t *testing.T, c *Config) {
				if c.Server.ProxyListen != DefaultProxyListen || c.Services != nil {
					t.Errorf("server %+v services %v", c.Server, c.Services)
				}
			},
		},
		{
			name: "anchors, aliases and merge keys",
			yaml: lines(
				`services:`,
				`  - &base`,
				`    name: a`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    balancing: random`,
				`  - <<: *base`,
				`    name: b`,
			),
			check: func(t *testing.T, c *Config) {
				if len(c.Services) != 2 || c.Services[1].Name != "b" || c.Services[1].Balancing != "random" ||
					c.Services[1].Targets[0].URL != "http://127.0.0.1:1" {
					t.Errorf("services = %+v", c.Services)
				}
			},
		},
		{
			name: "accepted edge values",
			yaml: lines(
				`server: {proxy_listen: "[::1]:0", trusted_proxies: ["::1", 192.168.0.0/16]}`,
				`store: "postgres://u@db:5432/tollgate"`,
				`redis: "rediss://cache:6380/1"`,
				`tracing: {sample_ratio: 0}`,
				`services:`,
				`  - name: s`,
				`    targets: [{url: "h2c://grpc.internal:50051/", weight: 1000}]`,
				`    balancing: consistent_hash`,
				`    hash_on: header:X-User`,
				`    retries: {attempts: 10}`,
				`routes:`,
				`  - {name: r, hosts: ["*.Example.com"], methods: [patch], service: s}`,
			),
			check: func(t *testing.T, c *Config) {
				if *c.Tracing.SampleRatio != 0 || c.Routes[0].Hosts[0] != "*.example.com" || c.Routes[0].Methods[0] != "PATCH" {
					t.Errorf("ratio %v route %+v", *c.Tracing.SampleRatio, c.Routes[0])
				}
			},
		},
		{
			name: "block strings and numbers as strings",
			yaml: lines(
				`routes:`,
				`  - name: m`,
				`    paths: [/m]`,
				`    headers: {X-Api-Version: 2}`,
				`    mock:`,
				`      body: |`,
				`        {"a": 1}`,
			),
			check: func(t *testing.T, c *Config) {
				r := c.Routes[0]
				if r.Headers["X-Api-Version"] != "2" || r.Mock.Body != "{\"a\": 1}\n" || r.Mock.Status != 200 {
					t.Errorf("route = %+v mock %+v", r, r.Mock)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("c.yaml", []byte(tt.yaml), envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestNullPolicyStaysInTheMap(t *testing.T) {
	c, err := parse("c.yaml", []byte(lines(
		`policies: {cors: {}}`,
		`services:`,
		`  - name: s`,
		`    targets: [{url: "http://127.0.0.1:1"}]`,
		`    policies: {cors: ~}`,
		`routes:`,
		`  - name: r`,
		`    paths: [/]`,
		`    service: s`,
		`    policies:`,
		`      cors:`,
		`      key-auth: {}`,
	)), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, ps := range map[string]Policies{"service": c.Services[0].Policies, "route": c.Routes[0].Policies} {
		v, ok := ps["cors"]
		if !ok || v != nil {
			t.Errorf("%s policies = %#v, want cors present with nil settings", name, ps)
		}
	}
	if v, ok := c.Routes[0].Policies["key-auth"].(map[string]any); !ok || v == nil || len(v) != 0 {
		t.Errorf("key-auth settings = %#v, want an empty non-nil map", c.Routes[0].Policies["key-auth"])
	}
	if v, ok := c.Policies["cors"].(map[string]any); !ok || v == nil {
		t.Errorf("global cors = %#v, want an empty map", c.Policies["cors"])
	}
}

func TestPolicySettingsAreGenericYAML(t *testing.T) {
	c, err := parse("c.yaml", []byte(lines(
		`policies:`,
		`  rate-limit: {limit: 100, window: 1m, per: "${PER}", burst: 1.5, on: true, list: [a, 2], extra: null}`,
	)), envMap(map[string]string{"PER": "consumer"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"limit": 100, "window": "1m", "per": "consumer", "burst": 1.5, "on": true,
		"list": []any{"a", 2}, "extra": nil,
	}
	if got := c.Policies["rate-limit"]; !reflect.DeepEqual(got, want) {
		t.Errorf("settings = %#v\nwant %#v", got, want)
	}
}

func TestSyntaxErrorsComeFromTheParser(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("a: [1, 2\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml:") {
		t.Fatalf("err = %v, want a located syntax error", err)
	}
}
