package sizelimit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/sizelimit"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

const maxBytes = 4096

// backend counts the body bytes it receives, over all requests, and tells
// on done when a request's body ends (whole or cut off).
type backend struct {
	*httptest.Server
	bytes atomic.Int64
	done  chan int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{done: make(chan int64, 16)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		b.bytes.Add(n)
		fmt.Fprintf(w, "got %d", n)
		b.done <- n
	}))
	t.Cleanup(b.Close)
	return b
}

// received waits for the backend to finish reading one body.
func (b *backend) received(t *testing.T) int64 {
	t.Helper()
	select {
	case n := <-b.done:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("the backend never finished reading a body")
		return 0
	}
}

func start(t *testing.T) (*gatewaytest.Gateway, *backend) {
	be := newBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      request-size-limit: {max_bytes: %d}
`, be.URL, maxBytes), nil)
	return g, be
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error answer is not the gateway's JSON: %q", body)
	}
	return e.Error.Code
}

func post(t *testing.T, url string, body io.Reader, length int64) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length // -1: chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestWithinTheLimitPasses(t *testing.T) {
	g, be := start(t)
	for _, length := range []int64{maxBytes, -1} {
		resp, b := post(t, g.URL+"/", bytes.NewReader(make([]byte, maxBytes)), length)
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("got %d", maxBytes) {
			t.Errorf("length %d: %d %q", length, resp.StatusCode, b)
		}
		be.received(t)
	}
}

// A Content-Length over the limit is refused before the body is read, and
// the connection is closed.
func TestAnnouncedTooLargeIsRefusedUpFront(t *testing.T) {
	g, be := start(t)
	resp, b := post(t, g.URL+"/", bytes.NewReader(make([]byte, maxBytes+1)), maxBytes+1)
	if resp.StatusCode != 413 || errorCode(t, b) != "body_too_large" || !resp.Close {
		t.Errorf("got %d %q close=%v, want 413 body_too_large and Connection: close", resp.StatusCode, b, resp.Close)
	}

	// Raw: a 1 MiB body is refused after its first 8 KiB, which the HTTP
	// server reads ahead with the head; the rest is never waited for.
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", 1<<20)
	conn.Write(make([]byte, 8<<10))
	rd := bufio.NewReader(conn)
	raw, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(raw.Body)
	if raw.StatusCode != 413 || errorCode(t, b) != "body_too_large" {
		t.Errorf("raw: %d %q", raw.StatusCode, b)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after the refusal: %v", err)
	}
	if n := be.bytes.Load(); n != 0 {
		t.Errorf("backend received %d bytes", n)
	}
}

// A chunked body is cut off once it passes the limit: the client gets 413
// and the backend never sees the body whole.
func TestChunkedBodyIsCutOffWhileStreaming(t *testing.T) {
	g, be := start(t)

	// net/http sends what the pipe gives it as chunks: 6 KiB, then the body
	// stays open (as an upload still under way) until the answer is in.
	pr, pw := io.Pipe()
	go func() {
		pw.Write(make([]byte, 6<<10))
	}()
	resp, b := post(t, g.URL+"/", pr, -1)
	pw.CloseWithError(io.ErrClosedPipe)
	if resp.StatusCode != 413 || errorCode(t, b) != "body_too_large" {
		t.Errorf("net/http: %d %q", resp.StatusCode, b)
	}
	if n := be.received(t); n > maxBytes {
		t.Errorf("backend received %d bytes, more than the limit %d", n, maxBytes)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := fmt.Sprintf("400\r\n%s\r\n", bytes.Repeat([]byte("a"), 0x400))
	for range 8 { // 8 KiB, twice the limit; the terminating chunk never comes
		io.WriteString(conn, chunk)
	}
	raw, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(raw.Body)
	if raw.StatusCode != 413 || errorCode(t, b) != "body_too_large" {
		t.Errorf("raw: %d %q", raw.StatusCode, b)
	}
	if n := be.received(t); n > maxBytes {
		t.Errorf("backend received %d bytes, more than the limit %d", n, maxBytes)
	}
	if n := be.bytes.Load(); n > 2*maxBytes {
		t.Errorf("backend received %d bytes in all", n)
	}
}

func TestOverHTTP2(t *testing.T) {
	g, be := start(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	t.Cleanup(h2c.CloseIdleConnections) // before the gateway drains

	for _, tc := range []struct {
		length int64
		body   io.Reader
	}{
		{maxBytes + 1, bytes.NewReader(make([]byte, maxBytes+1))},
		{-1, io.MultiReader(bytes.NewReader(make([]byte, 3*maxBytes)))}, // no length: DATA frames until the end
	} {
		req, _ := http.NewRequest("POST", g.URL+"/", tc.body)
		req.ContentLength = tc.length
		resp, err := h2c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 413 || errorCode(t, b) != "body_too_large" {
			t.Errorf("length %d: HTTP/%d %d %q", tc.length, resp.ProtoMajor, resp.StatusCode, b)
		}
	}
	if n := be.bytes.Load(); n > maxBytes {
		t.Errorf("backend received %d bytes", n)
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
      request-size-limit: {max_bytes: 0}
  - name: s
    paths: ["/s"]
    service: be
    policies:
      request-size-limit: {}
  - name: u
    paths: ["/u"]
    service: be
    policies:
      request-size-limit:
        max_bytes: 1MB
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		"t.yaml:9:28: max_bytes must be a positive number of bytes",
		"t.yaml:14:7: max_bytes must be a positive number of bytes",
		`t.yaml:20:9: expected an integer, got "1MB"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
