package config

import (
	"strings"
	"testing"
)

// svc is a valid one-line service list entry, for fixtures that need one.
const svc = `  - {name: users, targets: [{url: "http://127.0.0.1:9001"}]}`

func TestParseReportsEverySemanticProblemAtItsKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{
			name: "duplicate names",
			yaml: lines(
				`admin:`,
				`  tokens:`,
				`    - {name: ops, token: a, role: admin}`,
				`    - {name: ops, token: b, role: viewer}`,
				`services:`,
				svc,
				svc,
				`routes:`,
				`  - {name: r, paths: [/a], service: users}`,
				`  - {name: r, paths: [/b], service: users}`,
				`consumers:`,
				`  - {name: alice}`,
				`  - {name: alice}`,
				`plans:`,
				`  - {name: pro}`,
				`  - {name: pro}`,
				`  - {name: ""}`,
			),
			want: []problem{
				{at(4, 8), `duplicate admin token name "ops"`},
				{at(7, 6), `duplicate service name "users" (also services[0])`},
				{at(10, 6), `duplicate route name "r"`},
				{at(13, 6), `duplicate consumer name "alice"`},
				{at(16, 6), `duplicate plan name "pro"`},
				{at(17, 6), "plan needs a name"},
			},
		},
		{
			name: "route targets: exactly one of service, aggregate, mock, all existing",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: none`,
				`    paths: [/a]`,
				`  - name: both`,
				`    paths: [/b]`,
				`    service: users`,
				`    mock: {status: 204}`,
				`  - name: typo`,
				`    paths: [/c]`,
				`    service: usrs`,
				`  - name: agg`,
				`    paths: [/d]`,
				`    aggregate:`,
				`      - {key: a, service: nope, path: /x}`,
				`      - {key: a, service: users, path: "/y/{a.id}/{b.id}/{what}"}`,
			),
			want: []problem{
				{at(4, 5), "route needs one of service, aggregate or mock"},
				{at(9, 5), "route has both service and mock"},
				{at(12, 5), `unknown service "usrs"; did you mean "users"?`},
				{at(16, 18), `unknown service "nope"`},
				{at(17, 10), `duplicate key "a"`},
				{at(17, 34), "placeholder {a.id} refers to its own call"},
				{at(17, 34), "placeholder {b.id} names no call"},
				{at(17, 34), "placeholder {what} is neither"},
			},
		},
		{
			name: "aggregate calls need a key, a service and a path",
			yaml: lines(
				`routes:`,
				`  - name: agg`,
				`    paths: ["=/me"]`,
				`    aggregate:`,
				`      - {path: me}`,
			),
			want: []problem{
				{at(5, 10), "call needs a key"},
				{at(5, 10), "call needs a service"},
				{at(5, 10), `path must start with "/", got "me"`},
			},
		},
		{
			name: "aggregate calls waiting for each other",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: agg`,
				`    paths: ["=/me/{id}"]`,
				`    aggregate:`,
				`      - {key: a, service: users, path: "/a/{b.x}/{id}/{consumer}"}`,
				`      - {key: b, service: users, path: "/b/{a.x}"}`,
			),
			want: []problem{{at(7, 34), "calls wait for each other in a cycle"}},
		},
		{
			name: "route paths",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: nothing`,
				`    service: users`,
				`  - name: paths`,
				`    service: users`,
				`    paths:`,
				`      - users`,
				`      - "~^/(unclosed$"`,
				`      - /orders/id-{id}`,
				`      - /orders/{1id}`,
				`      - /a/{id}/b/{id}`,
				`      - "=/exact/{ok}"`,
				`      - "~^/fine/[0-9]+$"`,
			),
			want: []problem{
				{at(4, 5), "route needs at least one path or host"},
				{at(9, 9), `path "users" must start with "/"`},
				{at(10, 9), "invalid regular expression"},
				{at(11, 9), `template "id-{id}" must be a whole path segment`},
				{at(12, 9), `template name "1id"`},
				{at(13, 9), `template name "id" is used twice`},
			},
		},
		{
			name: "hosts, methods and header conditions",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: r`,
				`    service: users`,
				`    hosts: [API.example.com, "*.example.com", "api.example.com:8080", "bad_host-.com", "a..b"]`,
				`    methods: [get, CONNECT, trace, "GE T"]`,
				`    headers: {"X Bad": "1", X-Good: "2"}`,
			),
			want: []problem{
				{at(6, 47), "must not include a port"},
				{at(6, 71), "is not a valid host name"},
				{at(6, 88), "is not a valid host name"},
				{at(7, 20), "method CONNECT cannot be routed"},
				{at(7, 29), "method TRACE cannot be routed"},
				{at(7, 36), `"GE T" is not a valid HTTP method`},
				{at(8, 15), `"X Bad" is not a valid header name`},
			},
		},
		{
			name: "mock status and headers",
			yaml: lines(
				`routes:`,
				`  - name: m`,
				`    paths: [/m]`,
				`    mock: {status: 99, headers: {"Bad:Name": x}}`,
			),
			want: []problem{
				{at(4, 12), "99 is not an HTTP status"},
				{at(4, 34), `"Bad:Name" is not a valid header name`},
			},
		},
		{
			name: "targets",
			yaml: lines(
				`services:`,
				`  - name: s`,
				`    targets:`,
				`      - {url: "ftp://127.0.0.1:21"}`,
				`      - {url: "http://"}`,
				`      - {url: "http://127.0.0.1:9001/api"}`,
				`      - {url: "http://127.0.0.1:9001/?a=b"}`,
				`      - {url: "https://user:pw@127.0.0.1"}`,
				`      - {url: "http://127.0.0.1:99999"}`,
				`      - {url: "h2c://127.0.0.1:9001/", weight: 0}`,
				`      - {url: "https://backend.internal", weight: 1001}`,
				`      - {}`,
				`  - name: empty`,
			),
			want: []problem{
				{at(4, 10), "must use http, https or h2c"},
				{at(5, 10), "has no host"},
				{at(6, 10), "must not have a path"},
				{at(7, 10), "must not have a query"},
				{at(8, 10), "must not contain credentials"},
				{at(9, 10), "invalid port"},
				{at(10, 40), "weight must be between 1 and 1000, got 0"},
				{at(11, 43), "got 1001"},
				{at(12, 9), "target url is required"},
				{at(13, 5), "a service needs at least one target"},
			},
		},
		{
			name: "balancing, hashing, retries",
			yaml: lines(
				`services:`,
				`  - name: a`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    balancing: round-robin`,
				`    retries: {attempts: 0}`,
				`  - name: b`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    hash_on: ip`,
				`    retries: {attempts: 11}`,
				`  - name: c`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    balancing: consistent_hash`,
				`    hash_on: "header:"`,
				`  - name: d`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    balancing: consistent_hash`,
				`    hash_on: header:X-User`,
			),
			want: []problem{
				{at(4, 5), `unknown balancing "round-robin" (use round_robin, least_requests, consistent_hash, random); did you mean "round_robin"?`},
				{at(5, 15), "attempts must be between 1 and 10"},
				{at(8, 5), "hash_on only applies to balancing: consistent_hash"},
				{at(9, 15), "got 11"},
				{at(13, 5), "hash_on must be ip, consumer or header:NAME"},
			},
		},
		{
			name: "health checks and circuit breaker",
			yaml: lines(
				`services:`,
				`  - name: a`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    health_check:`,
				`      active: {path: healthz, healthy_threshold: -1, unhealthy_threshold: -2}`,
				`      passive: {unhealthy_statuses: [500, 99, 600], unhealthy_threshold: -1}`,
				`    circuit_breaker: {error_ratio: 1.5, min_requests: -1}`,
				`  - name: b`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    circuit_breaker: {error_ratio: -0.5}`,
			),
			want: []problem{
				{at(5, 16), `path must start with "/"`},
				{at(5, 31), "must be at least 1, got -1"},
				{at(5, 54), "must be at least 1, got -2"},
				{at(6, 43), "99 is not an HTTP status"},
				{at(6, 47), "600 is not an HTTP status"},
				{at(6, 53), "must be at least 1, got -1"},
				{at(7, 23), "error_ratio must be above 0 and at most 1, got 1.5"},
				{at(7, 41), "must be at least 1, got -1"},
				{at(10, 23), "got -0.5"},
			},
		},
		{
			name: "server, cluster and backends",
			yaml: lines(
				`server:`,
				`  proxy_listen: "8000"`,
				`  admin_listen: "localhost:http"`,
				`  tls: {listen: ":99999"}`,
				`  trusted_proxies: [10.0.0.0/8, 192.168.1.1, "10.0.0.0/33", proxy.local]`,
				`  limits: {max_header_bytes: -1, max_body_bytes: -1, max_concurrent_requests: -1}`,
				`store: "mysql://db"`,
				`redis: "http://cache:6379"`,
				`cluster: {listen: "nope", control_plane: "cp:8005"}`,
				`logging: {format: text}`,
				`tracing: {sample_ratio: 1.5}`,
			),
			want: []problem{
				{at(2, 3), `"8000" is not a host:port address`},
				{at(3, 3), `"localhost:http" has an invalid port`},
				{at(4, 3), "tls needs at least one certificate"},
				{at(4, 9), `":99999" has an invalid port`},
				{at(5, 46), `"10.0.0.0/33" is neither an IP address nor a CIDR range`},
				{at(5, 61), `"proxy.local" is neither`},
				{at(6, 12), "must not be negative"},
				{at(6, 34), "must not be negative"},
				{at(6, 54), "must not be negative (0 means unlimited)"},
				{at(7, 1), `unsupported store "mysql://db"`},
				{at(8, 1), `"http://cache:6379" is not a redis:// or rediss:// URL`},
				{at(9, 11), `"nope" is not a host:port address`},
				{at(9, 27), `"cp:8005" is not an http:// or https:// URL`},
				{at(10, 11), `unknown log format "text"`},
				{at(11, 11), "must be between 0 and 1, got 1.5"},
			},
		},
		{
			name: "tls certificates need both files",
			yaml: lines(
				`server:`,
				`  tls:`,
				`    certificates:`,
				`      - {cert: a.pem}`,
			),
			want: []problem{{at(4, 10), "key file is required"}},
		},
		{
			name: "admin tokens",
			yaml: lines(
				`admin:`,
				`  tokens:`,
				`    - {name: a, token: "", role: admin}`,
				`    - {name: b, token: x, role: root}`,
				`    - {token: y, role: viewer}`,
			),
			want: []problem{
				{at(3, 17), "token must not be empty"},
				{at(4, 27), `role must be admin or viewer, got "root"`},
				{at(5, 8), "admin token needs a name"},
			},
		},
		{
			name: "consumers and plans",
			yaml: lines(
				`consumers:`,
				`  - name: alice`,
				`    plan: por`,
				`    groups: [partners, ""]`,
				`    credentials:`,
				`      key-auth: [{key: k1}, {key: ""}]`,
				`      basic-auth: [{username: alice}]`,
				`      jwt: [{issuer: idp, secret: s, algorithm: RS256}]`,
				`      mtls: [{}]`,
				`  - name: bob`,
				`    credentials: {key-auth: [{key: k1}]}`,
				`plans:`,
				`  - name: pro`,
				`    price: {amount: -1, currency: euro, period: month}`,
				`    quota: {requests: 0, period: fortnight}`,
				`    rate_limit: {limit: 0}`,
			),
			want: []problem{
				{at(3, 5), `unknown plan "por"; did you mean "pro"?`},
				{at(4, 24), "group name must not be empty"},
				{at(6, 30), "key must not be empty"},
				{at(7, 21), "password must not be empty"},
				{at(8, 38), "a secret signs only HS256, HS384 or HS512, not RS256"},
				{at(9, 14), "mtls credential needs subject_cn or san"},
				{at(11, 31), "this key is already used by consumers[0].credentials.key-auth[0].key"},
				{at(14, 13), "amount must not be negative"},
				{at(14, 25), "three-letter ISO 4217 code"},
				{at(15, 13), "must be at least 1, got 0"},
				{at(15, 26), `period must be one of day, week, month, year, got "fortnight"`},
				{at(16, 5), "must be a positive duration"},
				{at(16, 18), "must be at least 1, got 0"},
			},
		},
		{
			name: "policy names and settings at every level",
			yaml: lines(
				`policies:`,
				`  rate-limt: {limit: 1}`,
				`services:`,
				`  - name: users`,
				`    targets: [{url: "http://127.0.0.1:1"}]`,
				`    policies: {corz: {}, rate-limit: ~}`,
				`routes:`,
				`  - name: r`,
				`    paths: [/]`,
				`    service: users`,
				`    policies:`,
				`      rate-limit: {limit: 0}`,
				`      key-auth: {}`,
				`      totally-unknown: {}`,
				`  - name: s`,
				`    paths: [/s]`,
				`    service: users`,
				`    policies: {rate-limit: {window: 1s}}`,
			),
			want: []problem{
				{at(2, 3), `unknown policy "rate-limt"; did you mean "rate-limit"?`},
				{at(6, 16), `unknown policy "corz"; did you mean "cors"?`},
				{at(12, 20), "limit must be a positive integer"},
				{at(14, 7), `unknown policy "totally-unknown"`},
				{at(18, 16), "limit must be a positive integer"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse("c.yaml", []byte(tt.yaml), envMap(nil))
			wantProblems(t, err, tt.want)
		})
	}
}

func TestValidateRefusesWhatNoDefaultExplains(t *testing.T) {
	// Values that YAML cannot express but Go callers (the admin API) can.
	c := Default()
	c.Services = []Service{{
		Name:      "s",
		Targets:   []Target{{URL: "http://127.0.0.1:1"}},
		Balancing: "random",
		Timeouts:  Timeouts{Connect: -1, Response: -1},
	}}
	c.Server.DrainTimeout = -1
	errs := c.Validate()
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"server.drain_timeout: must not be negative",
		"services[0].timeouts.connect: must be a positive duration",
		"services[0].timeouts.response: must be a positive duration",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestValidateDefaultIsClean(t *testing.T) {
	if errs := Default().Validate(); len(errs) != 0 {
		t.Errorf("Default().Validate() = %v", errs)
	}
}

func TestCredentialChecks(t *testing.T) {
	key := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	yaml := lines(
		`consumers:`,
		`  - name: a`,
		`    credentials:`,
		`      jwt: [{issuer: idp}, {issuer: x, algorithm: HS257, secret: s}, {issuer: y, public_key: "not pem"}, {issuer: z, algorithm: EdDSA, public_key: "`+strings.ReplaceAll(key, "\n", `\n`)+`"}]`,
		`      mtls: [{subject_cn: Alice}]`,
		`  - name: b`,
		`    credentials: {mtls: [{subject_cn: alice}, {san: b.example.com}]}`,
	)
	_, err := Parse("c.yaml", []byte(yaml))
	wantProblems(t, err, []problem{
		{"c.yaml:4:40", `unknown algorithm "HS257"`},
		{"c.yaml:4:82", "public_key is not PEM"},
		{"c.yaml:7:27", `subject_cn "alice" is already claimed by consumers[0].credentials.mtls[0]`},
	})
}
