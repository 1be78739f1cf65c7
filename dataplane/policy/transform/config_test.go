package transform_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      request-transform:
        add_headers:
          Host: evil.example
          X-Ok: "{consumer.name}"
          X-Open: "{header.X-A"
        remove_headers: [X-Forwarded-For, Connection, x-consumer-name]
        rename_headers: {X-A: X-B, X-C: X-B, X-Request-ID: X-Id}
        add_query: {q: "{nope}"}
        json:
          add: {user/id: 1}
          remove: ["/a~2"]
          max_body_bytes: -1
      response-transform:
        status_map: {502: 204, "5xx": 500, 404: 99}
        rename_headers: {Set-Cookie: X-Cookie}
        remove_headers: [Content-Length, Transfer-Encoding]
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:11:11: header "Host" cannot be changed by a transform: the gateway sets it for the upstream target`,
		`t.yaml:12:11: "{consumer.name}": unknown template {consumer.name}; known: {consumer}, {consumer.groups}`,
		`t.yaml:13:11: "{header.X-A": '{' is not closed`,
		`t.yaml:14:26: header "X-Forwarded-For" cannot be changed by a transform: the gateway sets it from the client connection`,
		`t.yaml:14:43: header "Connection" cannot be changed by a transform: it is a hop-by-hop header`,
		`t.yaml:14:55: header "x-consumer-name" cannot be changed by a transform: it names the authenticated consumer`,
		`t.yaml:15:36: "X-B" is already the new name of "X-A"`,
		`t.yaml:15:46: header "X-Request-ID" cannot be changed by a transform`,
		`t.yaml:16:21: "{nope}": unknown template {nope}`,
		`t.yaml:18:17: "user/id" is not a JSON pointer: it must start with '/'`,
		`t.yaml:19:20: "/a~2": '~' must be followed by 0 ('~') or 1 ('/')`,
		`t.yaml:20:11: must not be negative`,
		`t.yaml:22:22: 204 is an answer without a body`,
		`t.yaml:22:32: "5xx" is not a final status code (200 to 599)`,
		`t.yaml:22:44: 99 is not a final status code`,
		`t.yaml:23:26: Set-Cookie cannot be renamed`,
		`t.yaml:24:26: header "Content-Length" cannot be changed by a transform: the gateway sets it from the body`,
		`t.yaml:24:42: header "Transfer-Encoding" cannot be changed by a transform: it is a hop-by-hop header`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
}

func TestValidSettingsLoad(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      request-transform:
        add_headers: {X-Who: "{consumer} of {consumer.groups} via {route} at {path} from {client_ip} ({request_id}) {header.X-A} {query.q} {{x}}"}
        add_query: {n: 5, b: true}
        json: {add: {"/a": {b: [1, "{consumer}", null, 2.5]}, "/n": 5}, rename: {/x: /y}}
      response-transform:
        status_map: {502: 503}
        add_headers: {X-Num: 7}
`
	if _, err := config.Parse("t.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}
