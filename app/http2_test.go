package app

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// h2Backend answers with what it saw; /events streams three events, each
// only after the client asked for it.
func h2Backend(t *testing.T, next chan struct{}) *httptest.Server {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				<-next
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s proto=%s body=%s consumer=%q", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-Proto"), body, r.Header.Get("X-Consumer-Name"))
	}))
	t.Cleanup(be.Close)
	return be
}

func checkHTTP2(t *testing.T, client *http.Client, base, wantProto string, next chan struct{}) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/x", io.MultiReader(strings.NewReader("he"), strings.NewReader("llo")))
	req.Header.Set("X-Consumer-Name", "admin")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`POST /api/x proto=%s body=hello consumer=""`, wantProto)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("got %s %d %q, want HTTP/2 200 %q", resp.Proto, resp.StatusCode, b, want)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID on the HTTP/2 answer")
	}

	resp, err = client.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := rd.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		rd.ReadString('\n')
		next <- struct{}{}
	}
	resp.Body.Close()

	// The same edge rules hold: an encoded slash is refused by the gateway.
	resp, err = client.Get(base + "/a%2Fb")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"bad_request"`) {
		t.Errorf("encoded slash over HTTP/2: %d %s", resp.StatusCode, b)
	}
}

func TestHTTP2PriorKnowledge(t *testing.T) {
	next := make(chan struct{})
	be := h2Backend(t, next)
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	writeConfig(t, path, gatewayConfig("off", be.URL, "/"))
	a := startApp(t, path)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	checkHTTP2(t, h2c, "http://"+a.ProxyAddr(), "http", next)
	// HTTP/1.1 still works on the same port.
	if s := status(t, "http://"+a.ProxyAddr()+"/api/y"); s != 200 {
		t.Errorf("HTTP/1.1 beside h2c: %d", s)
	}
}

func TestHTTP2OverTLS(t *testing.T) {
	next := make(chan struct{})
	be := h2Backend(t, next)
	a, ca := startTLSApp(t, be.URL)
	client := &http.Client{Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com"},
	}}
	checkHTTP2(t, client, "https://"+a.TLSAddr(), "https", next)
}
