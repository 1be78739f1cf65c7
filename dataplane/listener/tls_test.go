package listener

import (
	"crypto/tls"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
)

// handshake connects to a crypto/tls server using c and returns the name on
// the certificate it got, or the handshake error.
func handshake(t *testing.T, c *Certificates, sni string, clientCert *tls.Certificate, ca *testutil.CA) (string, *tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig("http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverState := make(chan *tls.ConnectionState, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverState <- nil
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			serverState <- nil
			return
		}
		st := tc.ConnectionState()
		serverState <- &st
		tc.Write([]byte("x"))
	}()
	cfg := &tls.Config{ServerName: sni, RootCAs: ca.Pool()}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		<-serverState
		return "", nil, err
	}
	defer conn.Close()
	// TLS 1.3 reports a refused client certificate only on the first read.
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		<-serverState
		return "", nil, err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, <-serverState, nil
}

func TestCertificatesBySNIAndClientCA(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	write := func(name string, cn string, dns []string) config.Certificate {
		c, k := ca.Issue(t, cn, dns, false)
		return config.Certificate{Cert: testutil.WriteFile(t, dir, name+".pem", c), Key: testutil.WriteFile(t, dir, name+"-key.pem", k)}
	}
	cfg := &config.TLS{Certificates: []config.Certificate{
		write("default", "default", []string{"default.test"}),
		write("api", "api", []string{"api.example.com"}),
		write("wild", "wild", []string{"*.example.com"}),
	}}
	certs, err := LoadCertificates(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{
		"api.example.com":  "api",
		"API.Example.com":  "api",
		"shop.example.com": "wild",
		"default.test":     "default",
	} {
		got, _, err := handshake(t, certs, sni, nil, ca)
		if err != nil || got != want {
			t.Errorf("SNI %s: certificate %q (%v), want %q", sni, got, err, want)
		}
	}
	// A name no certificate covers gets the first one, which the client
	// then rejects: the handshake fails rather than pretending.
	if _, _, err := handshake(t, certs, "a.b.example.com", nil, ca); err == nil {
		t.Error("a.b.example.com was served a certificate the client accepted")
	}

	// client_ca: a certificate from the CA is verified and available; one
	// from another CA is refused; none at all is allowed (policies decide).
	cfg.ClientCA = testutil.WriteFile(t, dir, "ca.pem", ca.CertPEM)
	if err := certs.Reload(cfg, ""); err != nil {
		t.Fatal(err)
	}
	cp, kp := ca.Issue(t, "alice", nil, true)
	alice, _ := tls.X509KeyPair(cp, kp)
	_, st, err := handshake(t, certs, "api.example.com", &alice, ca)
	if err != nil || len(st.VerifiedChains) == 0 || st.PeerCertificates[0].Subject.CommonName != "alice" {
		t.Fatalf("trusted client certificate: err %v, state %+v", err, st)
	}
	other := testutil.NewCA(t)
	cp, kp = other.Issue(t, "mallory", nil, true)
	mallory, _ := tls.X509KeyPair(cp, kp)
	if _, _, err := handshake(t, certs, "api.example.com", &mallory, ca); err == nil {
		t.Error("a client certificate from an unknown CA was accepted")
	}
	if _, st, err := handshake(t, certs, "api.example.com", nil, ca); err != nil || len(st.PeerCertificates) != 0 {
		t.Errorf("no client certificate: %v", err)
	}
}

func TestCertificateReloadKeepsOldOnError(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c, k := ca.Issue(t, "first", []string{"a.test"}, false)
	cfg := &config.TLS{Certificates: []config.Certificate{{Cert: testutil.WriteFile(t, dir, "c.pem", c), Key: testutil.WriteFile(t, dir, "k.pem", k)}}}
	certs, err := LoadCertificates(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	c2, k2 := ca.Issue(t, "second", []string{"a.test"}, false)
	testutil.WriteFile(t, dir, "c.pem", c2)
	testutil.WriteFile(t, dir, "k.pem", k2)
	if err := certs.Reload(cfg, ""); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := handshake(t, certs, "a.test", nil, ca); got != "second" {
		t.Errorf("after reload: %q", got)
	}
	bad := &config.TLS{Certificates: []config.Certificate{{Cert: dir + "/missing.pem", Key: dir + "/k.pem"}}}
	if err := certs.Reload(bad, ""); err == nil {
		t.Fatal("missing certificate file accepted")
	}
	if got, _, _ := handshake(t, certs, "a.test", nil, ca); got != "second" {
		t.Errorf("after a failed reload: %q", got)
	}
}
