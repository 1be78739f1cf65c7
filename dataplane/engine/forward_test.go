package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/listener"
	"github.com/tollgate/tollgate/observe/accesslog"
	"github.com/tollgate/tollgate/observe/metrics"
)

// Bodies up to the buffering limit are answered from memory, larger ones are
// streamed; either way the client gets exactly what the upstream sent.
func TestResponseBodiesAroundTheBufferingLimit(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bodyOf(n))
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	for _, n := range []int{0, 1, 16<<10 - 1, 16 << 10, 16<<10 + 1, 1 << 20} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			// Twice, so the second request runs on a pooled connection that
			// the first one must have left clean.
			for range 2 {
				resp, err := http.Get(gw.url + "/?n=" + strconv.Itoa(n))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, bodyOf(n)) {
					t.Fatalf("status %d, %d bytes (err %v), want 200 with %d bytes", resp.StatusCode, len(got), err, n)
				}
				if resp.ContentLength != int64(n) {
					t.Fatalf("Content-Length %d, want %d", resp.ContentLength, n)
				}
			}
		})
	}
}

func bodyOf(n int) []byte {
	return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
}

// An upstream that breaks off a small body before its announced length is
// reported as unavailable: the head has not been sent yet, so the client is
// told instead of receiving a cut answer.
func TestShortSmallBodyIs502(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
		buf.Flush()
		conn.Close()
	}))
	defer be.Close()
	gw := startGateway(t, oneRoute(config.Route{Paths: []string{"/"}}, be.URL))
	resp, err := http.Get(gw.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	if ge := decodeError(t, resp); resp.StatusCode != 502 || ge.Error.Code != "upstream_unavailable" {
		t.Errorf("%d %+v", resp.StatusCode, ge)
	}
}

// The upstream request is the client's own request rewritten when nothing
// has to be removed from it; the access log must still show the path the
// client asked for, and HTTP/1.0 clients (whose request is copied instead)
// must still get their connection closed.
func TestRewrittenRequestKeepsClientView(t *testing.T) {
	be := echoBackend(t)
	cfg := oneRoute(config.Route{Paths: []string{"/api"}, StripPath: true}, be.URL)
	cfg.ApplyDefaults()
	logPath := filepath.Join(t.TempDir(), "access.log")
	al, err := accesslog.New(logPath)
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), AccessLog: al})
	if err := e.Apply(cfg, 1); err != nil {
		t.Fatal(err)
	}
	srv := listener.New(&cfg.Server, e.ServeHTTP)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		e.Close()
	}()
	addr := srv.Addr().String()

	req, _ := http.NewRequest("GET", "http://"+addr+"/api/users/5?x=1", nil)
	_, echo := getEcho(t, req)
	if echo.URI != "/users/5?x=1" {
		t.Errorf("upstream URI %q, want /users/5?x=1", echo.URI)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /api/old HTTP/1.0\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTP/1.0 request: status %d", resp.StatusCode)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("HTTP/1.0 connection left open after the answer (read err %v)", err)
	}

	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ent struct{ Path string }
		if err := json.Unmarshal([]byte(line), &ent); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		paths = append(paths, ent.Path)
	}
	if strings.Join(paths, " ") != "/api/users/5 /api/old" {
		t.Errorf("access log paths %q, want [/api/users/5 /api/old]", paths)
	}
}
