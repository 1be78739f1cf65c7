package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tollgate/tollgate/internal/testutil"
)

// http3Config writes a configuration with the TLS listener and HTTP/3 on,
// its certificate for api.example.com (and, with clientCA, the CA as
// client_ca) from the returned CA, and returns the file's path.
func http3Config(t *testing.T, backend string, clientCA bool) (string, *testutil.CA) {
	t.Helper()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c, k := ca.Issue(t, "api", []string{"api.example.com"}, false)
	testutil.WriteFile(t, dir, "cert.pem", c)
	testutil.WriteFile(t, dir, "key.pem", k)
	tlsConf := `{listen: "127.0.0.1:0", http3: true, certificates: [{cert: cert.pem, key: key.pem}]`
	if clientCA {
		testutil.WriteFile(t, dir, "ca.pem", ca.CertPEM)
		tlsConf += ", client_ca: ca.pem"
	}
	path := filepath.Join(dir, "tollgate.yaml")
	writeConfig(t, path, strings.Replace(gatewayConfig("off", backend, "/"), "server:\n", "server:\n  tls: "+tlsConf+"}\n", 1))
	return path, ca
}

// http3Client speaks HTTP/3 only, trusting ca, with cert as its client
// certificate when given.
func http3Client(t *testing.T, ca *testutil.CA, cert *tls.Certificate) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com"},
		// Short, so that a server that does not answer fails the request soon.
		QUICConfig: &quic.Config{HandshakeIdleTimeout: 3 * time.Second},
	}
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestHTTP3ProxiesAndStreams(t *testing.T) {
	uploaded := make(chan string)
	next := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			// The first part must arrive while the client still holds the
			// second one back.
			first := make([]byte, 5)
			if _, err := io.ReadFull(r.Body, first); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			uploaded <- string(first)
			rest, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s+%s", first, rest)
		case "/download":
			for i := 1; i <= 2; i++ {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
				if i == 1 {
					<-next
				}
			}
		default:
			fmt.Fprintf(w, "%s %s proto=%s for=%s custom=%s", r.Method, r.URL.Path,
				r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Custom"))
		}
	}))
	defer be.Close()
	path, ca := http3Config(t, be.URL, false)
	a := startApp(t, path)
	client := http3Client(t, ca, nil)
	base := "https://" + a.TLSAddr()

	req, _ := http.NewRequest("GET", base+"/hello", nil)
	req.Header.Set("X-Custom", "kept")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "GET /hello proto=https for=127.0.0.1 custom=kept"
	if resp.ProtoMajor != 3 || resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("got %s %d %q, want HTTP/3 200 %q", resp.Proto, resp.StatusCode, b, want)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID on the HTTP/3 answer")
	}

	body, send := io.Pipe()
	done := make(chan string, 1)
	go func() {
		resp, err := client.Post(base+"/upload", "text/plain", body)
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	send.Write([]byte("part1"))
	select {
	case got := <-uploaded:
		if got != "part1" {
			t.Fatalf("upstream got %q first", got)
		}
	case r := <-done:
		t.Fatalf("upload over before the upstream saw its first part: %s", r)
	}
	send.Write([]byte("part2"))
	send.Close()
	if got := <-done; got != "200 part1+part2" {
		t.Errorf("streamed upload: %s", got)
	}

	resp, err = client.Get(base + "/download")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := 1; i <= 2; i++ {
		line, err := rd.ReadString('\n')
		if err != nil || line != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("download chunk %d: %q %v", i, line, err)
		}
		if i == 1 {
			next <- struct{}{} // the second chunk is written only now
		}
	}
}

func TestHTTP3AdvertisedOnTCP(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", `h3=":1"`) // the upstream's own: not the client's business
	}))
	defer be.Close()
	path, ca := http3Config(t, be.URL, false)
	a := startApp(t, path)
	_, port, _ := net.SplitHostPort(a.TLSAddr())
	want := `h3=":` + port + `"; ma=86400`
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com"}
	var h1 http.Protocols
	h1.SetHTTP1(true)
	for name, tr := range map[string]*http.Transport{
		"HTTP/1.1": {TLSClientConfig: tlsConf.Clone(), Protocols: &h1},
		"HTTP/2.0": {TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true},
	} {
		resp, err := (&http.Client{Transport: tr}).Get("https://" + a.TLSAddr() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if got := resp.Header.Values("Alt-Svc"); resp.Proto != name || len(got) != 1 || got[0] != want {
			t.Errorf("%s answer: Alt-Svc %q, want %q", resp.Proto, got, want)
		}
	}

	// Without http3 nothing is announced.
	plain, ca2 := startTLSApp(t, be.URL)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca2.Pool(), ServerName: "api.example.com"}}}
	resp, err := client.Get("https://" + plain.TLSAddr() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != `h3=":1"` {
		t.Errorf("without http3: Alt-Svc %q, want the upstream's own", got)
	}
}

func TestHTTP3ClientCertificates(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	path, ca := http3Config(t, be.URL, true)
	a := startApp(t, path)
	issue := func(ca *testutil.CA, name string) *tls.Certificate {
		c, k := ca.Issue(t, name, nil, true)
		cert, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &cert
	}
	get := func(cert *tls.Certificate) error {
		resp, err := http3Client(t, ca, cert).Get("https://" + a.TLSAddr() + "/x")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(issue(ca, "alice")); err != nil {
		t.Errorf("certificate from client_ca: %v", err)
	}
	if err := get(nil); err != nil {
		t.Errorf("no client certificate (left to policies): %v", err)
	}
	if err := get(issue(testutil.NewCA(t), "mallory")); err == nil {
		t.Error("certificate from an unknown CA accepted over HTTP/3")
	}
}

func TestHTTP3CertificateReloadAndShutdown(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "finished")
	}))
	defer be.Close()
	path, ca := http3Config(t, be.URL, false)
	a, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	base := "https://" + a.TLSAddr()
	served := func(client *http.Client) (string, error) {
		resp, err := client.Get(base + "/x")
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName, nil
	}
	if cn, err := served(http3Client(t, ca, nil)); cn != "api" {
		t.Fatalf("certificate %q (%v)", cn, err)
	}

	// A renewed certificate is read on reload and used by new connections.
	c, k := ca.Issue(t, "renewed", []string{"api.example.com"}, false)
	dir := filepath.Dir(path)
	testutil.WriteFile(t, dir, "cert.pem", c)
	testutil.WriteFile(t, dir, "key.pem", k)
	old, _ := os.ReadFile(path)
	writeConfig(t, path, string(old)+"# renewed\n")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn, err := served(http3Client(t, ca, nil)); cn != "renewed" {
		t.Fatalf("after reload: certificate %q (%v)", cn, err)
	}

	// Shutdown lets a request in flight finish, takes no new connection,
	// and frees the UDP port.
	got := make(chan string, 1)
	go func() {
		resp, err := http3Client(t, ca, nil).Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- a.Shutdown(context.Background()) }()
	testutil.Eventually(t, 10*time.Second, "HTTP/3 listener closed", func() bool {
		_, err := served(http3Client(t, ca, nil))
		return err != nil
	})
	close(release)
	if r := <-got; r != "200 finished" {
		t.Errorf("in-flight HTTP/3 request: %s", r)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	udp, err := net.ListenPacket("udp", a.TLSAddr())
	if err != nil {
		t.Fatalf("UDP port still held after shutdown: %v", err)
	}
	udp.Close()
}

func TestHTTP3BindFailureStopsStart(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	path, _ := http3Config(t, "http://127.0.0.1:1", false)
	conf, _ := os.ReadFile(path)
	writeConfig(t, path, strings.Replace(string(conf), `listen: "127.0.0.1:0"`, `listen: "`+taken.LocalAddr().String()+`"`, 1))
	a, err := New(Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	err = a.Start()
	if err == nil || !strings.Contains(err.Error(), "HTTP/3 listener "+taken.LocalAddr().String()+" (UDP)") ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start with the UDP port taken: %v", err)
	}
}
