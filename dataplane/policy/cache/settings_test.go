package cache_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestSettingsErrors(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: a
    paths: ["/a"]
    service: be
    policies:
      cache: {methods: [GET, POST], vary: ["Accept Language"]}
  - name: b
    paths: ["/b"]
    service: be
    policies:
      cache:
        methods: [HEAD]
        max_body_bytes: 2048
        memory_bytes: 1024
  - name: c
    paths: ["/c"]
    service: be
    policies:
      cache: {ttl: -5s}
  - name: d
    paths: ["/d"]
    service: be
    policies:
      cache: {lock_timeout: 1h, key_headers: [""]}
  - name: e
    paths: ["/e"]
    service: be
    policies:
      cache: {tll: 5s}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:9:30: "POST": only GET and HEAD responses are cached`,
		`t.yaml:9:44: "Accept Language" is not a header name`,
		`t.yaml:15:19: HEAD is answered from the entries of GET: list GET too`,
		`t.yaml:16:9: is larger than memory_bytes (1024)`,
		`t.yaml:22:15: duration "-5s" must not be negative`,
		`t.yaml:27:15: must be at most 5m0s`,
		`t.yaml:27:47: "" is not a header name`,
		`t.yaml:32:15: unknown field "tll"; did you mean "ttl"?`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestDefaultsAreValid(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: a
    paths: ["/a"]
    service: be
    policies:
      cache: {}
  - name: b
    paths: ["/b"]
    service: be
    policies:
      cache: {ttl: 5m, methods: [GET], vary: [Accept], key_headers: [X-Tenant], key_consumer: true,
              cache_private: true, max_body_bytes: 65536, memory_bytes: 1048576, redis: false,
              key_prefix: "gw:", lock_timeout: 0}
`
	if _, err := config.Parse("t.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}
