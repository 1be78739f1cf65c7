package cluster

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/controlplane/store"
	_ "github.com/tollgate/tollgate/dataplane/policy/all" // policies the test files name
)

// A fresh data plane gets one snapshot; every change after it travels as a
// delta holding only that change's ops, pushed as it is made.
func TestStreamSendsASnapshotThenSmallDeltas(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(2000)+"policies: {cors: {}}\n")
	s := openStream(t, cp.url, token, 0, "")
	if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != 200 || ct != ContentType {
		t.Fatalf("stream: %d %s", s.resp.StatusCode, ct)
	}
	snap, snapLine := s.next()
	if snap.Type != TypeSnapshot || snap.Version != 1 || len(snap.Entities) != 2000 || snap.Epoch == "" {
		t.Fatalf("first message: %s v%d, %d entities, epoch %q", snap.Type, snap.Version, len(snap.Entities), snap.Epoch)
	}
	if _, ok := snap.Globals.Policies["cors"]; !ok {
		t.Errorf("snapshot globals %+v lack the file's cors policy", snap.Globals)
	}

	v := cp.putRoute(t, "extra", "/extra")
	delta, deltaLine := s.next()
	if delta.Type != TypeDelta || delta.From != 1 || delta.Version != v || len(delta.Ops) != 1 || delta.Ops[0].Name != "extra" {
		t.Fatalf("after one change: %s", deltaLine)
	}
	if delta.Globals != nil {
		t.Errorf("unchanged globals were sent again: %s", deltaLine)
	}
	if len(deltaLine) > 512 || len(snapLine) < 100_000 {
		t.Errorf("a one-route delta is %d bytes (the snapshot %d): only the change must travel", len(deltaLine), len(snapLine))
	}

	// A change of the file's global policies alone makes no version, but
	// travels all the same.
	if _, err := cp.ctrl.ApplyFile(context.Background(), parse(t, mockRoutes(2000)+"policies: {request-size-limit: {max_bytes: 10}}\n")); err != nil {
		t.Fatal(err)
	}
	g, line := s.next()
	if g.Type != TypeDelta || g.Version != v || len(g.Ops) != 0 || g.Globals == nil || g.Globals.Policies["request-size-limit"] == nil {
		t.Fatalf("after a change of global policies: %s", line)
	}
}

// A data plane that comes back with a version of the same store history
// gets what it missed, as a delta: from the feed's log, or from the store
// after a control plane restart; one of another history gets a snapshot.
func TestStreamResumesFromTheDataPlanesVersion(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(3))
	first, _ := openStream(t, cp.url, token, 0, "").next()
	epoch := first.Epoch
	cp.putRoute(t, "a", "/a")
	v3 := cp.putRoute(t, "b", "/b")

	check := func(name string, m *Message) {
		t.Helper()
		if m.Type != TypeDelta || m.From != 1 || m.Version != v3 || m.Globals == nil {
			t.Fatalf("%s: %s from %d to %d (globals %v), want a delta from 1 to %d with the globals", name, m.Type, m.From, m.Version, m.Globals != nil, v3)
		}
	}
	// From the log: the first line carries the globals, then the log's entries.
	s := openStream(t, cp.url, token, 1, epoch)
	m, _ := s.next()
	if m.Type != TypeDelta || m.From != 1 || m.Version != 1 || m.Globals == nil {
		t.Fatalf("first line of a resumed stream: %+v", m)
	}
	// Changes made together may share a delta.
	var names []string
	for v := int64(1); v < v3; {
		m, _ := s.next()
		for _, op := range m.Ops {
			names = append(names, op.Name)
		}
		v = m.Version
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("resumed stream brought %v, want a and b", names)
	}

	// From the store, after a restart of the control plane.
	cp.stop()
	cp2 := startControlPlane(t, cp.st, mockRoutes(3))
	m, _ = openStream(t, cp2.url, token, 1, epoch).next()
	check("after a restart", m)
	if len(m.Ops) != 2 {
		t.Errorf("after a restart: %d ops, want 2", len(m.Ops))
	}

	for name, hello := range map[string]struct {
		version int64
		epoch   string
	}{"another epoch": {1, "v1@0"}, "a version ahead": {v3 + 5, epoch}, "nothing": {0, ""}} {
		if m, _ := openStream(t, cp2.url, token, hello.version, hello.epoch).next(); m.Type != TypeSnapshot || m.Version != v3 {
			t.Errorf("%s: %s v%d, want a snapshot of v%d", name, m.Type, m.Version, v3)
		}
	}

	// Up to date: a delta with the globals and nothing else.
	if m, _ := openStream(t, cp2.url, token, v3, epoch).next(); m.Type != TypeDelta || m.From != v3 || m.Version != v3 || len(m.Ops) != 0 {
		t.Errorf("up to date: %+v", m)
	}
}

// Streams opened together share one encoded snapshot, followed by what
// the log added since.
func TestSnapshotIsEncodedOnceAndFollowedByTheLog(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(10))
	a, aLine := openStream(t, cp.url, token, 0, "").next()
	v := cp.putRoute(t, "late", "/late")
	s := openStream(t, cp.url, token, 0, "")
	b, bLine := s.next()
	if a.Type != TypeSnapshot || b.Type != TypeSnapshot || string(aLine) != string(bLine) {
		t.Fatalf("second snapshot differs from the first:\n%s\n%s", aLine, bLine)
	}
	if m, line := s.next(); m.Type != TypeDelta || m.Version != v || m.Ops[0].Name != "late" {
		t.Fatalf("after the cached snapshot: %s", line)
	}
}

func TestStreamRefusesAWrongToken(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(1))
	for _, tok := range []string{"wrong", ""} {
		req, _ := http.NewRequest(http.MethodGet, cp.url+StreamPath, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set(HeaderNodeID, "intruder")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", tok, resp.StatusCode)
		}
	}
	if !strings.Contains(cp.logs.String(), "invalid cluster token") || !strings.Contains(cp.logs.String(), "node=intruder") {
		t.Errorf("the refusal is not logged:\n%s", cp.logs)
	}
	if len(cp.srv.Nodes()) != 0 {
		t.Errorf("a refused data plane is listed: %+v", cp.srv.Nodes())
	}
	resp, err := http.Post(cp.url+ReportPath, "application/json", strings.NewReader(`{"id":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("report without a token: %d", resp.StatusCode)
	}
}

// Ops of versions after the latest one Since counted are left for the next
// delta.
func TestUpToDropsLaterVersions(t *testing.T) {
	ops := []store.Op{{Version: 3}, {Version: 4}, {Version: 4}, {Version: 5}}
	if got := upTo(ops, 4); len(got) != 3 {
		t.Errorf("upTo(…, 4) kept %d ops, want 3", len(got))
	}
}
