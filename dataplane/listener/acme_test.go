package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
	"github.com/valyala/fasthttp"
)

// pebble is Let's Encrypt's ACME test server, running on loopback.
type pebble struct {
	directory string         // ACME directory URL
	caRoot    string         // file trusted for pebble's own HTTPS
	roots     *x509.CertPool // pebble's issuing root
	cmd       *exec.Cmd
}

// startPebble runs pebble with challenges always valid (nothing to answer),
// or skips the test when it is not installed.
func startPebble(t *testing.T) *pebble {
	t.Helper()
	bin, err := exec.LookPath("pebble")
	if err != nil {
		bin = filepath.Join(build.Default.GOPATH, "bin", "pebble")
		if _, err := os.Stat(bin); err != nil {
			t.Skip("pebble not installed (go install github.com/letsencrypt/pebble/v2/cmd/pebble@latest)")
		}
	}
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "localhost", []string{"localhost"}, false)
	listen, mgmt := testutil.ClosedPort(t), testutil.ClosedPort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    testutil.WriteFile(t, dir, "cert.pem", certPEM),
		"privateKey":                     testutil.WriteFile(t, dir, "key.pem", keyPEM),
		"httpPort":                       5002,
		"tlsPort":                        5001,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles":                       map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}})
	var out bytes.Buffer
	cmd := exec.Command(bin, "-config", testutil.WriteFile(t, dir, "pebble.json", cfg))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("pebble does not start: %v", err)
	}
	p := &pebble{cmd: cmd, caRoot: testutil.WriteFile(t, dir, "pebble-ca.pem", ca.CertPEM)}
	t.Cleanup(p.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer client.CloseIdleConnections()
	get := func(url string) ([]byte, bool) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, err == nil && resp.StatusCode == 200
	}
	p.directory = "https://" + strings.Replace(listen, "127.0.0.1", "localhost", 1) + "/dir"
	testutil.Eventually(t, 10*time.Second, "pebble answers", func() bool { _, ok := get(p.directory); return ok })
	root, ok := get("https://" + strings.Replace(mgmt, "127.0.0.1", "localhost", 1) + "/roots/0")
	p.roots = x509.NewCertPool()
	if !ok || !p.roots.AppendCertsFromPEM(root) {
		t.Fatalf("pebble's root: %s", root)
	}
	return p
}

func (p *pebble) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// startACMEServer serves a TLS listener with certificates from a (and
// static ones from certs, when given).
func startACMEServer(t *testing.T, a *ACME, certs *Certificates) string {
	t.Helper()
	srv := New(&config.Server{}, func(ctx *fasthttp.RequestCtx) { fmt.Fprintf(ctx, "hello %s", ctx.TLSConnectionState().ServerName) })
	srv.EnableHTTP2()
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if certs != nil {
		base = certs.ServerConfig("h2", "http/1.1")
	}
	if err := srv.ListenTLS("127.0.0.1:0", a.TLSConfig(base)); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if err := a.Start(srv.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return srv.Addr().String()
}

// getOver makes an HTTPS request to addr for name, verifying against roots.
func getOver(addr, name string, roots *x509.CertPool) (string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + name + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Proto + " " + string(b), err
}

// The managed domains get certificates from the ACME CA and are served
// with them (HTTP/2 included); other names keep the configured
// certificates. What was obtained is kept in storage: a restart serves it
// without the CA.
func TestACMECertificatesFromPebble(t *testing.T) {
	p := startPebble(t)
	dir := t.TempDir()
	static := testutil.NewCA(t)
	certPEM, keyPEM := static.Issue(t, "static.test", []string{"static.test"}, false)
	certs, err := LoadCertificates(&config.TLS{Certificates: []config.Certificate{{
		Cert: testutil.WriteFile(t, dir, "static.pem", certPEM), Key: testutil.WriteFile(t, dir, "static-key.pem", keyPEM),
	}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	settings := &config.ACME{
		Email:   "ops@tollgate.example",
		Domains: []string{"gateway.tollgate.example", "API.tollgate.example"},
		CA:      p.directory,
		CARoot:  "pebble-ca.pem", // relative: from the base directory
		Storage: "acme-store",
	}
	baseDir := filepath.Dir(p.caRoot)
	quiet := slog.New(slog.DiscardHandler)
	a, err := NewACME(settings, baseDir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := startACMEServer(t, a, certs)

	for _, name := range []string{"gateway.tollgate.example", "api.tollgate.example"} {
		testutil.Eventually(t, 30*time.Second, "a certificate for "+name, func() bool {
			got, err := getOver(addr, name, p.roots)
			return err == nil && got == "HTTP/2.0 hello "+name
		})
	}
	if got, err := getOver(addr, "static.test", static.Pool()); err != nil || got != "HTTP/2.0 hello static.test" {
		t.Errorf("configured certificate for another name: %q %v", got, err)
	}
	stored, _ := filepath.Glob(filepath.Join(baseDir, "acme-store", "certificates", "*", "gateway.tollgate.example", "*.crt"))
	if len(stored) != 1 {
		t.Errorf("certificate files in storage: %v", stored)
	}

	// Restarted on the same storage, with the CA gone.
	p.stop()
	a.Stop()
	again, err := NewACME(settings, baseDir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr = startACMEServer(t, again, nil)
	testutil.Eventually(t, 10*time.Second, "the stored certificate", func() bool {
		got, err := getOver(addr, "gateway.tollgate.example", p.roots)
		return err == nil && got == "HTTP/2.0 hello gateway.tollgate.example"
	})
}

// Handshakes for names ACME manages fail cleanly before Start, and a nil
// ACME leaves a configuration as it is.
func TestACMEBeforeStartAndNil(t *testing.T) {
	a, err := NewACME(&config.ACME{Domains: []string{"a.tollgate.example"}}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.tollgate.example"}); err != errACMENotStarted {
		t.Errorf("before Start: %v", err)
	}
	cfg := &tls.Config{NextProtos: []string{"h2"}}
	if (*ACME)(nil).TLSConfig(cfg) != cfg || cfg.GetCertificate != nil || len(cfg.NextProtos) != 1 {
		t.Error("a nil ACME changed the configuration")
	}
	if a.TLSConfig(cfg); cfg.GetCertificate == nil || strings.Join(cfg.NextProtos, ",") != "h2,acme-tls/1" {
		t.Errorf("wrapped: protocols %v", cfg.NextProtos)
	}
	if _, err := NewACME(&config.ACME{Domains: []string{"a.tollgate.example"}, CARoot: "missing.pem"}, t.TempDir(), nil); err == nil ||
		!strings.Contains(err.Error(), "server.tls.acme.ca_root") {
		t.Errorf("missing ca_root: %v", err)
	}
	if a, err := NewACME(nil, "", nil); a != nil || err != nil {
		t.Errorf("no acme block: %v %v", a, err)
	}
}

// server.tls.acme replaces certificates; its problems are reported where
// they are.
func TestACMESettingsAreChecked(t *testing.T) {
	if _, err := config.Parse("t.yaml", []byte(`server:
  tls: {acme: {domains: [gateway.tollgate.example]}}
`)); err != nil {
		t.Errorf("acme without certificates: %v", err)
	}
	_, err := config.Parse("t.yaml", []byte(`server:
  tls:
    acme:
      email: "not an address"
      domains: ["*.tollgate.example", "10.0.0.1", localhost, ok.tollgate.example, OK.tollgate.example]
      ca: "ftp://ca.example/dir"
`))
	for _, want := range []string{
		`t.yaml:4:7: invalid email address "not an address"`,
		"t.yaml:5:17: wildcard certificates need the DNS challenge",
		`t.yaml:5:39: "10.0.0.1" is not a domain name`,
		`t.yaml:5:51: "localhost" is not a domain name`,
		`t.yaml:5:83: duplicate domain "OK.tollgate.example"`,
		"t.yaml:6:7: ca must be the URL of an ACME directory",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config errors:\n%v\nwant one starting %q", err, want)
		}
	}
}
