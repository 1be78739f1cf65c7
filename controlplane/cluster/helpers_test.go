package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
)

const token = "cluster-secret"

// controlPlane is a Server over a memory store, on a real listener.
type controlPlane struct {
	ctrl *controlplane.Controller
	st   store.Store
	srv  *Server
	ts   *httptest.Server
	url  string
	logs *syncBuffer
}

func parse(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startControlPlane applies yaml to st (a fresh memory store when nil) and
// serves the cluster endpoints until the test ends or stop is called.
func startControlPlane(t testing.TB, st store.Store, yaml string, opts ...func(*ServerOptions)) *controlPlane {
	return startControlPlaneAt(t, "", st, yaml, opts...)
}

// startControlPlaneAt is startControlPlane on a given address.
func startControlPlaneAt(t testing.TB, addr string, st store.Store, yaml string, opts ...func(*ServerOptions)) *controlPlane {
	t.Helper()
	if st == nil {
		st = memory.New()
	}
	file := parse(t, yaml)
	ctrl, err := controlplane.New(context.Background(), st, file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.ApplyFile(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	so := ServerOptions{Controller: ctrl, Token: token, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, o := range opts {
		o(&so)
	}
	srv, err := NewServer(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	if addr != "" {
		// The address of a control plane that went away, to come back on.
		ts.Listener.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ts.Listener = ln
	}
	ts.Start()
	cp := &controlPlane{ctrl: ctrl, st: st, srv: srv, ts: ts, url: ts.URL, logs: logs}
	t.Cleanup(cp.stop)
	return cp
}

// stop ends the server and its streams, as a control plane going away.
func (cp *controlPlane) stop() {
	cp.ts.CloseClientConnections()
	cp.ts.Close()
	cp.srv.Close()
}

// putRoute adds or replaces a mock route through the controller, as the
// admin API does.
func (cp *controlPlane) putRoute(t testing.TB, name, path string) int64 {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"paths":[%q],"mock":{"status":200,"body":%q}}`, name, path, name)
	v, err := cp.ctrl.Change(context.Background(), store.Change{Actor: "test", Ops: []store.Op{
		{Kind: store.Routes, Name: name, Source: store.SourceAPI, Body: []byte(body)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return v.N
}

// mockRoutes returns a file of n mock routes.
func mockRoutes(n int) string {
	var b strings.Builder
	b.WriteString("routes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: r%05d, paths: [/r%05d], mock: {body: r%05d}}\n", i, i, i)
	}
	return b.String()
}

// stream is a raw stream, read message by message.
type stream struct {
	t    testing.TB
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t testing.TB, url, tok string, version int64, epoch string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+StreamPath, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set(HeaderNodeID, "raw-"+strconv.FormatInt(version, 10))
	req.Header.Set(HeaderVersion, strconv.FormatInt(version, 10))
	req.Header.Set(HeaderEpoch, epoch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &stream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next message that is not a heartbeat, and its line.
func (s *stream) next() (*Message, []byte) {
	s.t.Helper()
	type result struct {
		line []byte
		err  error
	}
	for {
		ch := make(chan result, 1)
		go func() {
			line, err := s.r.ReadBytes('\n')
			ch <- result{line, err}
		}()
		var res result
		select {
		case res = <-ch:
		case <-time.After(10 * time.Second):
			s.t.Fatal("no message within 10s")
		}
		if res.err != nil {
			s.t.Fatalf("reading the stream: %v", res.err)
		}
		m, err := DecodeMessage(res.line)
		if err != nil {
			s.t.Fatal(err)
		}
		if m.Type != TypeHeartbeat {
			return m, res.line
		}
	}
}

// syncBuffer is a log destination tests read while servers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func deleteRoute(name string) store.Change {
	return store.Change{Actor: "test", Ops: []store.Op{{Kind: store.Routes, Name: name, Delete: true}}}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
