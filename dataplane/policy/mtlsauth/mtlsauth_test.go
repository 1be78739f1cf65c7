package mtlsauth_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	_ "github.com/tollgate/tollgate/dataplane/policy/introspection"
	_ "github.com/tollgate/tollgate/dataplane/policy/mtlsauth"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

const consumersYAML = `consumers:
  - name: alice
    groups: [partners]
    credentials: {mtls: [{subject_cn: alice}]}
  - name: bob
    credentials: {mtls: [{san: bob.clients.example.com}, {subject_cn: bob-legacy}]}
  - name: guest
`

// tlsGateway runs a gateway with a TLS listener (certificate for
// api.example.com) that verifies client certificates against ca, routes
// holding the given policies (path to YAML flow mapping) in front of an
// upstream echoing the consumer headers.
func tlsGateway(t *testing.T, ca *testutil.CA, routes map[string]string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewayYAML(t, routes, consumersYAML), tlsFiles(t, ca))
}

func tlsFiles(t *testing.T, ca *testutil.CA) map[string][]byte {
	cert, key := ca.Issue(t, "api", []string{"api.example.com"}, false)
	return map[string][]byte{"cert.pem": cert, "key.pem": key, "ca.pem": ca.CertPEM}
}

func gatewayYAML(t *testing.T, routes map[string]string, consumers string) string {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"consumer": r.Header.Get("X-Consumer-Name"),
			"groups":   r.Header.Get("X-Consumer-Groups"),
		})
	}))
	t.Cleanup(be.Close)
	var b strings.Builder
	b.WriteString(strings.Replace(gatewaytest.Server, "server:\n",
		"server:\n  tls: {listen: \"127.0.0.1:0\", certificates: [{cert: cert.pem, key: key.pem}], client_ca: ca.pem}\n", 1))
	b.WriteString("services:\n  - name: api\n    targets: [{url: \"" + be.URL + "\"}]\nroutes:\n")
	for path, policies := range routes {
		b.WriteString("  - name: r" + strings.ReplaceAll(path, "/", "-") + "\n    paths: [\"" + path +
			"\"]\n    service: api\n    policies: " + policies + "\n")
	}
	b.WriteString(consumers)
	return b.String()
}

// client presents the certificate issued by issuer for cn and dnsNames (no
// certificate when issuer is nil), trusting ca for the gateway's.
func client(t *testing.T, ca, issuer *testutil.CA, cn string, dnsNames []string, h2 bool) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com"}
	if issuer != nil {
		certPEM, keyPEM := issuer.Issue(t, cn, dnsNames, true)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type result struct {
	status   int
	proto    int
	consumer string
	groups   string
	code     string
}

func get(t *testing.T, c *http.Client, url string, header ...string) (result, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	r := result{status: resp.StatusCode, proto: resp.ProtoMajor}
	if resp.StatusCode == http.StatusOK {
		var up map[string]string
		if err := json.Unmarshal(body, &up); err != nil {
			t.Fatalf("upstream answer %q: %v", body, err)
		}
		r.consumer, r.groups = up["consumer"], up["groups"]
		return r, nil
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("gateway error %q: %v", body, err)
	}
	r.code = e.Error.Code
	return r, nil
}

func mustGet(t *testing.T, c *http.Client, url string, header ...string) result {
	t.Helper()
	r, err := get(t, c, url, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCertificateIdentifiesConsumer(t *testing.T) {
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{"/": "{mtls-auth: {}}"})

	cases := []struct {
		name, cn string
		dns      []string
		consumer string
		groups   string
	}{
		{"subject CN", "alice", nil, "alice", "partners"},
		{"second credential", "bob-legacy", nil, "bob", ""},
		{"DNS SAN", "device-17", []string{"Bob.Clients.Example.com"}, "bob", ""},
		{"CN and SAN of one consumer", "bob-legacy", []string{"bob.clients.example.com"}, "bob", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustGet(t, client(t, ca, ca, c.cn, c.dns, false), g.TLSURL+"/x", "X-Consumer-Name", "mallory")
			if r.status != 200 || r.consumer != c.consumer || r.groups != c.groups {
				t.Errorf("got %d %q consumer %q groups %q, want 200 %q %q", r.status, r.code, r.consumer, r.groups, c.consumer, c.groups)
			}
		})
	}
}

func TestCertificateWithoutConsumerIsRefused(t *testing.T) {
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{"/": "{mtls-auth: {}}"})

	for _, c := range []struct {
		name, cn string
		dns      []string
	}{
		{"unknown", "mallory", []string{"mallory.example.com"}},
		{"two consumers", "alice", []string{"bob.clients.example.com"}},
	} {
		r := mustGet(t, client(t, ca, ca, c.cn, c.dns, false), g.TLSURL+"/x")
		if r.status != 401 || r.code != "unauthorized" {
			t.Errorf("%s: %d %q, want 401 unauthorized", c.name, r.status, r.code)
		}
	}
}

func TestCertificateOfAnotherCAIsRefused(t *testing.T) {
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{"/": "{mtls-auth: {}}"})

	// Same name as a consumer, wrong issuer: the handshake fails (the
	// listener verifies any certificate offered), or at the latest the
	// request is refused.
	r, err := get(t, client(t, ca, testutil.NewCA(t), "alice", nil, false), g.TLSURL+"/x")
	t.Logf("another CA: err=%v status=%d", err, r.status)
	if err == nil && r.status != 401 {
		t.Errorf("certificate of another CA: %d consumer %q, want a TLS error or 401", r.status, r.consumer)
	}
}

func TestNoCertificate(t *testing.T) {
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{
		"/":     "{mtls-auth: {}}",
		"/open": "{mtls-auth: {anonymous: guest}}",
	})
	none := client(t, ca, nil, "", nil, false)

	if r := mustGet(t, none, g.TLSURL+"/x"); r.status != 401 {
		t.Errorf("no certificate: %d, want 401", r.status)
	}
	if r := mustGet(t, http.DefaultClient, g.URL+"/x"); r.status != 401 {
		t.Errorf("clear connection: %d, want 401", r.status)
	}
	if r := mustGet(t, none, g.TLSURL+"/open"); r.status != 200 || r.consumer != "guest" {
		t.Errorf("no certificate, anonymous: %d consumer %q, want 200 guest", r.status, r.consumer)
	}
	if r := mustGet(t, client(t, ca, ca, "alice", nil, false), g.TLSURL+"/open"); r.consumer != "alice" {
		t.Errorf("certificate on an anonymous route: consumer %q, want alice", r.consumer)
	}
}

func TestHTTP2WithClientCertificate(t *testing.T) {
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{"/": "{mtls-auth: {}}"})
	c := client(t, ca, ca, "alice", nil, true)

	for range 2 { // the second request on the same connection
		r := mustGet(t, c, g.TLSURL+"/x")
		if r.proto != 2 || r.status != 200 || r.consumer != "alice" {
			t.Errorf("HTTP/%d: %d consumer %q, want HTTP/2 200 alice", r.proto, r.status, r.consumer)
		}
	}
	if r := mustGet(t, client(t, ca, nil, "", nil, true), g.TLSURL+"/x"); r.proto != 2 || r.status != 401 {
		t.Errorf("HTTP/%d without certificate: %d, want HTTP/2 401", r.proto, r.status)
	}
}

func TestReloadChangesTheMapping(t *testing.T) {
	ca := testutil.NewCA(t)
	routes := map[string]string{"/": "{mtls-auth: {}}"}
	g := tlsGateway(t, ca, routes)
	c := client(t, ca, ca, "alice", nil, false)
	if r := mustGet(t, c, g.TLSURL+"/x"); r.consumer != "alice" {
		t.Fatalf("before reload: %d consumer %q", r.status, r.consumer)
	}
	g.Reload(t, gatewayYAML(t, routes, `consumers:
  - name: carol
    credentials: {mtls: [{subject_cn: alice}]}
`))
	// Same connection, same certificate, new snapshot's index.
	if r := mustGet(t, c, g.TLSURL+"/x"); r.consumer != "carol" {
		t.Errorf("after reload: %d consumer %q, want carol", r.status, r.consumer)
	}
}

// TestWithAnotherAuthentication puts mtls-auth beside oauth2-introspection
// on one route: either credential is enough.
func TestWithAnotherAuthentication(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("token") == "tok-bob" {
			io.WriteString(w, `{"active":true,"username":"bob"}`)
			return
		}
		io.WriteString(w, `{"active":false}`)
	}))
	t.Cleanup(idp.Close)
	ca := testutil.NewCA(t)
	g := tlsGateway(t, ca, map[string]string{"/": `{mtls-auth: {}, oauth2-introspection: {url: "` + idp.URL +
		`", client_id: gw, client_secret: s}}`})
	alice := client(t, ca, ca, "alice", nil, false)
	none := client(t, ca, nil, "", nil, false)

	cases := []struct {
		name     string
		c        *http.Client
		token    string
		status   int
		consumer string
	}{
		{"certificate", alice, "", 200, "alice"},
		{"token", none, "tok-bob", 200, "bob"},
		{"both: mtls-auth runs first (by name)", alice, "tok-bob", 200, "alice"},
		{"certificate and a bad token", alice, "revoked", 200, "alice"},
		{"neither", none, "", 401, ""},
		{"bad token only", none, "revoked", 401, ""},
	}
	for _, c := range cases {
		var h []string
		if c.token != "" {
			h = []string{"Authorization", "Bearer " + c.token}
		}
		if r := mustGet(t, c.c, g.TLSURL+"/x", h...); r.status != c.status || r.consumer != c.consumer {
			t.Errorf("%s: %d %q consumer %q, want %d %q", c.name, r.status, r.code, r.consumer, c.status, c.consumer)
		}
	}
}

func TestCredentialOfTwoConsumersIsRefused(t *testing.T) {
	consumers := []config.Consumer{
		{Name: "alice", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "svc.example.com"}}}},
		{Name: "bob", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "SVC.example.com."}}}},
	}
	_, err := policy.Compile(config.Policies{"mtls-auth": map[string]any{}}, &policy.Build{
		Route: "r", Consumers: policy.NewDirectory(consumers), State: policy.NewState(), Shared: policy.NewShared(),
	})
	if err == nil || !strings.Contains(err.Error(), `"alice" and "bob" both claim`) {
		t.Errorf("ambiguous credentials: error %v", err)
	}
}

func TestSettingsErrorsArePlaced(t *testing.T) {
	yaml := `services:
  - name: api
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: api
    paths: ["/"]
    service: api
    policies:
      mtls-auth: {anonymus: guest}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil || !strings.Contains(err.Error(), `t.yaml:9:19: unknown field "anonymus"; did you mean "anonymous"?`) {
		t.Errorf("misspelt setting: %v", err)
	}
}
