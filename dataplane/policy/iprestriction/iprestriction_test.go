package iprestriction_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/iprestriction"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// backend counts the requests that reach it and echoes the X-Forwarded-For
// the gateway sent.
type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, "xff="+r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(b.Close)
	return b
}

// trustLoopback is the gateway's server section with the loopback peer as
// a trusted proxy.
var trustLoopback = strings.Replace(gatewaytest.Server, "server:\n", "server:\n  trusted_proxies: [\"127.0.0.1/32\"]\n", 1)

func configYAML(server, backendURL, settings string) string {
	return server + fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      ip-restriction: %s
`, backendURL, settings)
}

type answer struct {
	status int
	proto  int
	code   string
	body   string
}

func call(t *testing.T, client *http.Client, url string, xff ...string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, proto: resp.ProtoMajor, body: string(b)}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("error answer is not the gateway's JSON: %q", b)
		}
		a.code = e.Error.Code
	}
	return a
}

func expect(t *testing.T, got answer, status int) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status %d (%q), want %d", got.status, got.body, status)
	}
	if status == 403 && got.code != "ip_forbidden" {
		t.Fatalf("403 with code %q, want ip_forbidden", got.code)
	}
}

// The test client connects from 127.0.0.1; each case reloads the lists.
func TestAllowAndDenyLists(t *testing.T) {
	be := newBackend(t)
	g := gatewaytest.Start(t, configYAML(gatewaytest.Server, be.URL, `{deny: ["10.0.0.0/8"]}`), nil)
	cases := []struct {
		name, settings string
		want           int
	}{
		{"deny misses", `{deny: ["10.0.0.0/8"]}`, 200},
		{"deny plain address", `{deny: ["127.0.0.1"]}`, 403},
		{"deny range", `{deny: ["192.168.0.0/16", "127.0.0.0/8"]}`, 403},
		{"allow covers", `{allow: ["127.0.0.1/32"]}`, 200},
		{"allow misses", `{allow: ["10.0.0.0/8", "192.168.0.0/16"]}`, 403},
		{"deny wins over allow", `{allow: ["127.0.0.0/8"], deny: ["127.0.0.1"]}`, 403},
		{"allow and an unrelated deny", `{allow: ["127.0.0.0/8"], deny: ["127.0.0.2"]}`, 200},
		{"IPv4-mapped entry covers IPv4", `{allow: ["::ffff:127.0.0.0/104"]}`, 200},
		{"IPv6 range does not cover IPv4", `{deny: ["::/0"]}`, 200},
		{"IPv6 loopback is not IPv4 loopback", `{allow: ["::1"]}`, 403},
		{"host bits ignored", `{deny: ["127.9.9.9/8"]}`, 403},
		{"whole IPv4 space", `{deny: ["0.0.0.0/0"]}`, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g.Reload(t, configYAML(gatewaytest.Server, be.URL, tc.settings))
			before := be.hits.Load()
			expect(t, call(t, http.DefaultClient, g.URL+"/x"), tc.want)
			reached := be.hits.Load() - before
			if (tc.want == 200) != (reached == 1) {
				t.Errorf("backend reached %d times for a %d", reached, tc.want)
			}
		})
	}
}

// X-Forwarded-For names the client only when the peer is a trusted proxy:
// otherwise anyone could claim an allowed address, or dodge a denied one.
func TestXForwardedForOnlyFromATrustedProxy(t *testing.T) {
	be := newBackend(t)
	deny := `{deny: ["203.0.113.0/24", "2001:db8::/32"]}`
	allow := `{allow: ["198.51.100.0/24"]}`

	t.Run("trusted", func(t *testing.T) {
		g := gatewaytest.Start(t, configYAML(trustLoopback, be.URL, deny), nil)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "203.0.113.9"), 403)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "::ffff:203.0.113.9"), 403)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "2001:db8::1"), 403)
		// The right-most address not a trusted proxy is the client.
		expect(t, call(t, http.DefaultClient, g.URL+"/", "203.0.113.9, 198.51.100.1"), 200)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "198.51.100.1, 203.0.113.9"), 403)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "203.0.113.9", "127.0.0.1"), 403)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "2001:db9::1"), 200)

		g.Reload(t, configYAML(trustLoopback, be.URL, allow))
		expect(t, call(t, http.DefaultClient, g.URL+"/", "198.51.100.1"), 200)
		expect(t, call(t, http.DefaultClient, g.URL+"/"), 403) // the proxy itself is not allowed
	})
	t.Run("not trusted", func(t *testing.T) {
		g := gatewaytest.Start(t, configYAML(gatewaytest.Server, be.URL, deny), nil)
		expect(t, call(t, http.DefaultClient, g.URL+"/", "203.0.113.9"), 200)
		g.Reload(t, configYAML(gatewaytest.Server, be.URL, allow))
		expect(t, call(t, http.DefaultClient, g.URL+"/", "198.51.100.1"), 403)
	})
}

func TestOverHTTP2(t *testing.T) {
	be := newBackend(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	g := gatewaytest.Start(t, configYAML(trustLoopback, be.URL, `{deny: ["127.0.0.1", "203.0.113.0/24"]}`), nil)
	t.Cleanup(h2c.CloseIdleConnections) // before the gateway drains
	for _, tc := range []struct {
		xff  []string
		want int
	}{
		{nil, 403},
		{[]string{"203.0.113.50"}, 403},
		{[]string{"198.51.100.1"}, 200},
	} {
		got := call(t, h2c, g.URL+"/", tc.xff...)
		if got.proto != 2 {
			t.Fatalf("answered over HTTP/%d, want HTTP/2", got.proto)
		}
		expect(t, got, tc.want)
	}
}

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      ip-restriction:
        allow:
          - 10.0.0.0/8
          - 10.0.0.300/8
        deny: ["fe80::1%eth0"]
  - name: empty
    paths: ["/e"]
    service: be
    policies:
      ip-restriction: {}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:12:13: "10.0.0.300/8" is neither an IP address nor a CIDR range`,
		`t.yaml:13:16: "fe80::1%eth0" has a zone`,
		`t.yaml:18:7: at least one of allow or deny is required`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
