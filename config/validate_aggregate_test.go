package config

import "testing"

func TestParseReportsAggregateProblemsAtTheirKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{
			name: "keys, services, timeouts and methods",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: agg`,
				`    paths: ["=/me"]`,
				`    methods: [GET, POST]`,
				`    aggregate:`,
				`      - {key: _errors, service: users, path: /a}`,
				`      - {key: "a.b", service: users, path: /a}`,
				`      - {key: ok, service: user, path: /a}`,
				`      - key: slow`,
				`        service: users`,
				`        path: /a`,
				`        timeout: -1s`,
			),
			want: []problem{
				{at(6, 20), "an aggregate route answers GET and HEAD only, not POST"},
				{at(8, 10), `key "_errors" is reserved`},
				{at(9, 10), `key "a.b" must be a letter`},
				{at(10, 19), `unknown service "user"; did you mean "users"?`},
				{at(14, 9), "must not be negative"},
			},
		},
		{
			name: "templates that do not parse",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: agg`,
				`    paths: ["=/me"]`,
				`    aggregate:`,
				`      - {key: a, service: users, path: "/a/{id"}`,
				`      - {key: b, service: users, path: "/b/{a.}"}`,
				`      - {key: c, service: users, path: "/c d"}`,
				`      - {key: d, service: users, path: "/d/%zz"}`,
				`      - {key: e, service: users, path: "/e/}"}`,
			),
			want: []problem{
				{at(7, 34), `is not closed with "}"`},
				{at(8, 34), "placeholder {a.}: each field after the key"},
				{at(9, 34), `character ' ' must be percent-encoded`},
				{at(10, 34), `"%" must start an escape`},
				{at(11, 34), `"}" without "{"`},
			},
		},
		{
			name: "placeholders naming nothing, and a cycle",
			yaml: lines(
				`services:`,
				svc,
				`routes:`,
				`  - name: agg`,
				`    paths: ["/orders/{id}", "~^/o/(?P<id>[0-9]+)/(?P<v>[a-z]+)$", "/x/{v}"]`,
				`    aggregate:`,
				`      - {key: a, service: users, path: "/a/{id}/{v}/{nope.x}"}`,
				`      - {key: b, service: users, path: "/b/{c.x}?consumer={consumer}"}`,
				`      - {key: c, service: users, path: "/c/{b.items.0.id}"}`,
			),
			want: []problem{
				{at(7, 34), "placeholder {id} is not a parameter of every path of the route"},
				{at(7, 34), "placeholder {v} is not a parameter of every path of the route"},
				{at(7, 34), "placeholder {nope.x} names no call of this route"},
				{at(8, 34), "calls wait for each other in a cycle"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			wantProblems(t, err, tc.want)
		})
	}
}

func TestParseAcceptsTheContractsAggregateRoute(t *testing.T) {
	_, err := Parse("c.yaml", []byte(lines(
		`services:`,
		`  - {name: users, targets: [{url: "http://127.0.0.1:9001"}]}`,
		`  - {name: orders, targets: [{url: "http://127.0.0.1:9002"}]}`,
		`routes:`,
		`  - name: me-dashboard`,
		`    paths: ["=/me"]`,
		`    methods: [GET, head]`,
		`    aggregate:`,
		`      - {key: profile, service: users, path: "/users/{consumer}"}`,
		`      - {key: orders,  service: orders, path: "/orders?user={profile.id}", optional: true, timeout: 2s}`,
		`      - {key: last-order, service: orders, path: "/orders/{orders.items.0.id}%2Fx", optional: true}`,
	)))
	if err != nil {
		t.Fatal(err)
	}
}
