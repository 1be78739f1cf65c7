package engine

import (
	"bufio"
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
)

// TestMalformedHeadsAreRefused sends heads that a lenient parser might read
// differently from the backend behind it: each must be answered 400 (or 405)
// by the gateway, with the connection closed, and never reach the backend.
func TestMalformedHeadsAreRefused(t *testing.T) {
	var hits atomic.Int32
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	cases := []struct {
		name, raw string
		status    int
	}{
		{"length and chunked", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"differing lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"signed length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400},
		{"gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"space in name", "GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 0}, // 400 or 405: refused either way
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", gw.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, c.raw)
			rd := bufio.NewReader(conn)
			resp, err := http.ReadResponse(rd, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if c.status != 0 && resp.StatusCode != c.status || c.status == 0 && resp.StatusCode != 400 && resp.StatusCode != 405 {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if c.status == 400 {
				// The connection is closed after a framing error.
				if _, err := rd.ReadByte(); err == nil {
					t.Errorf("connection still open after %s", c.name)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("backend reached %d times", n)
	}
}

func TestUnderscoreHeadersAreDropped(t *testing.T) {
	be := echoBackend(t)
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	for _, withBody := range []bool{false, true} {
		var body io.Reader
		if withBody {
			body = strings.NewReader("x")
		}
		req, _ := http.NewRequest("POST", gw.url+"/", body)
		req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
		req.Header["X_Consumer_Name"] = []string{"admin"}
		_, got := getEcho(t, req)
		for name := range got.Header {
			if strings.Contains(name, "_") {
				t.Errorf("body %v: %s forwarded", withBody, name)
			}
		}
	}
}

// TestStalledBodyTimesOut: a client that stops sending its body is answered
// 408 and disconnected within the read timeout, and the upstream is not
// blamed for it.
func TestStalledBodyTimesOut(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.ReadHeaderTimeout = config.Duration(300 * time.Millisecond)
	gw := startGateway(t, cfg)
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("a", 9000))
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer (%v after %s)", err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != 408 {
		t.Errorf("stalled body: %d, want 408", resp.StatusCode)
	}
}

// TestSlowUploadKeepsGoing: a body that arrives slowly but steadily is not
// cut by the read timeout, which bounds each pause, not the whole upload.
func TestSlowUploadKeepsGoing(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	defer be.Close()
	cfg := oneRoute(config.Route{Paths: []string{"/"}}, be.URL)
	cfg.Server.ReadHeaderTimeout = config.Duration(400 * time.Millisecond)
	gw := startGateway(t, cfg)
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 16<<10)
		for i := 0; i < 8; i++ { // 8 pauses of 100ms: 800ms in all, twice the timeout
			pw.Write(chunk)
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", gw.url+"/", pr)
	req.ContentLength = 8 * 16 << 10
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != fmt.Sprint(8*16<<10) {
		t.Fatalf("slow upload: %d %q", resp.StatusCode, b)
	}
}
