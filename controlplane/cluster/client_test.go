package cluster

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/internal/testutil"
)

// dataPlane is a Client whose engine is a recorder of what it was given.
type dataPlane struct {
	*Client
	logs *syncBuffer

	mu      sync.Mutex
	version int64
	routes  []string
	refuse  string // a route name that makes Apply fail
	applied atomic.Int64
}

func newDataPlane(t testing.TB, url, tok, dir string) *dataPlane {
	t.Helper()
	d := &dataPlane{logs: &syncBuffer{}}
	d.version = -1
	c, err := NewClient(ClientOptions{
		ControlPlane: url, Token: tok, CacheDir: dir, Hostname: "dp-test",
		Logger: slog.New(slog.NewTextHandler(d.logs, nil)),
		Base:   config.Default, Apply: d.apply,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Client = c
	t.Cleanup(c.Close)
	return d
}

func (d *dataPlane) apply(cfg *config.Config, version int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, r := range cfg.Routes {
		if r.Name == d.refuse {
			return errors.New("route " + r.Name + " refused")
		}
		names = append(names, r.Name)
	}
	d.version, d.routes = version, names
	d.applied.Add(1)
	return nil
}

func (d *dataPlane) serving() (int64, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version, d.routes
}

func (d *dataPlane) waitVersion(t testing.TB, v int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "the data plane at the version", func() bool {
		got, _ := d.serving()
		return got == v
	})
}

// The client follows the control plane, keeps serving when it goes, boots
// from its cache when restarted without it, and catches up by a delta
// when it comes back.
func TestClientFollowsCachesAndBootsFromCache(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(2))
	dir := t.TempDir()
	dp := newDataPlane(t, cp.url, token, dir)
	if ok, err := dp.LoadCache(); ok || err != nil {
		t.Fatalf("an empty cache: %v %v", ok, err)
	}
	dp.Start()
	dp.waitVersion(t, 1)
	v2 := cp.putRoute(t, "added", "/added")
	dp.waitVersion(t, v2)
	if _, routes := dp.serving(); len(routes) != 3 {
		t.Errorf("routes %v", routes)
	}
	testutil.Eventually(t, 5*time.Second, "the node listed with its version", func() bool {
		n := cp.srv.Nodes()
		return len(n) == 1 && n[0].ConfigVersion == v2 && n[0].Status == StatusConnected && n[0].Health == HealthOK && n[0].Hostname == "dp-test" && n[0].ID == dp.NodeID()
	})

	waitCached(t, dir, v2)
	cp.stop()
	testutil.Eventually(t, 5*time.Second, "the data plane notices", func() bool { return !dp.Status().Connected })
	if v, _ := dp.serving(); v != v2 {
		t.Errorf("serving %d after the control plane left, want %d", v, v2)
	}
	if n := cp.srv.Nodes(); len(n) != 1 || n[0].Status != StatusDisconnected {
		t.Errorf("nodes after the stream ended: %+v", n)
	}
	dp.Close()

	// Restarted while the control plane is away: the cache serves.
	dp2 := newDataPlane(t, cp.url, token, dir)
	if ok, err := dp2.LoadCache(); !ok || err != nil {
		t.Fatalf("cache: %v %v", ok, err)
	}
	if v, routes := dp2.serving(); v != v2 || len(routes) != 3 {
		t.Fatalf("from the cache: version %d, routes %v", v, routes)
	}
	if dp2.NodeID() != dp.NodeID() {
		t.Errorf("node id changed across a restart: %s then %s", dp.NodeID(), dp2.NodeID())
	}
	dp2.Start()
	testutil.Eventually(t, 5*time.Second, "a failed connection attempt", func() bool {
		return strings.Contains(dp2.logs.String(), "control plane unreachable")
	})
	if v, _ := dp2.serving(); v != v2 {
		t.Errorf("serving %d while the control plane is down", v)
	}

	// The control plane comes back on the same store: the data plane gets
	// what it missed, and the delta joins the cache.
	cp2 := startControlPlaneAt(t, strings.TrimPrefix(cp.url, "http://"), cp.st, mockRoutes(2))
	testutil.Eventually(t, 10*time.Second, "reconnected", func() bool { return dp2.Status().Connected })
	applied := dp2.applied.Load()
	v3 := cp2.putRoute(t, "later", "/later")
	dp2.waitVersion(t, v3)
	if n := dp2.applied.Load() - applied; n != 1 {
		t.Errorf("%d applies for one change after reconnecting, want 1", n)
	}
	if !strings.Contains(cp2.logs.String(), "had_version="+itoa(v2)) {
		t.Errorf("the data plane did not resume from its version:\n%s", cp2.logs)
	}
	testutil.Eventually(t, 5*time.Second, "the last change in the cache's journal", func() bool {
		journal, _ := os.ReadFile(filepath.Join(dir, cacheJournal))
		return strings.Contains(string(journal), `"name":"later"`)
	})
}

// A configuration the engine refuses is reported and not cached; the last
// good one stays served and cached.
func TestRefusedConfigurationIsReportedAndNotCached(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(1))
	dir := t.TempDir()
	dp := newDataPlane(t, cp.url, token, dir)
	dp.refuse = "bad"
	dp.Start()
	dp.waitVersion(t, 1)
	bad := cp.putRoute(t, "bad", "/bad")
	testutil.Eventually(t, 5*time.Second, "the refusal reported", func() bool {
		n := cp.srv.Nodes()
		return len(n) == 1 && strings.Contains(n[0].Health, "refused") && n[0].ConfigVersion == 1
	})
	if h := dp.Status().Health; !strings.HasPrefix(h, "error: configuration version "+itoa(bad)) {
		t.Errorf("health %q", h)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheJournal)); err == nil {
		t.Error("the refused version was cached")
	}
	if _, err := cp.ctrl.Change(t.Context(), deleteRoute("bad")); err != nil {
		t.Fatal(err)
	}
	dp.waitVersion(t, bad+1)
	if dp.Status().Health != HealthOK {
		t.Errorf("health after a good version: %q", dp.Status().Health)
	}
	waitCached(t, dir, bad+1)
	dp2 := newDataPlane(t, cp.url, token, dir)
	if ok, err := dp2.LoadCache(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, routes := dp2.serving(); v != bad+1 || len(routes) != 1 {
		t.Errorf("cached: version %d, routes %v", v, routes)
	}
}

func TestClientWithAWrongTokenIsRefusedAndSaysSo(t *testing.T) {
	cp := startControlPlane(t, nil, mockRoutes(1))
	dp := newDataPlane(t, cp.url, "not-the-token", t.TempDir())
	dp.Start()
	testutil.Eventually(t, 5*time.Second, "the refusal logged", func() bool {
		return strings.Contains(dp.logs.String(), "refused the cluster token (401 Unauthorized): check cluster.token")
	})
	if st := dp.Status(); st.Configured || st.Connected {
		t.Errorf("status %+v", st)
	}
	if len(cp.srv.Nodes()) != 0 {
		t.Errorf("listed: %+v", cp.srv.Nodes())
	}
}

// A stream that goes silent (a control plane hung, a connection dead
// without a reset) is dropped after three heartbeats and reopened.
func TestSilentStreamIsReopened(t *testing.T) {
	var opened atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StreamPath {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		opened.Add(1)
		w.Header().Set(HeaderHeartbeat, "20")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	dp := newDataPlane(t, ts.URL, token, t.TempDir())
	dp.Start()
	testutil.Eventually(t, 5*time.Second, "reopened", func() bool { return opened.Load() >= 2 })
	if !strings.Contains(dp.logs.String(), "nothing from the control plane for 60ms") {
		t.Errorf("logs:\n%s", dp.logs)
	}
}

// The journal is folded into a new snapshot once it outgrows half the
// snapshot, and the cache still reads back whole.
func TestCacheJournalIsCompacted(t *testing.T) {
	was := minCompact
	minCompact = 0
	t.Cleanup(func() { minCompact = was }) // after the client stops
	cp := startControlPlane(t, nil, mockRoutes(2))
	dir := t.TempDir()
	dp := newDataPlane(t, cp.url, token, dir)
	dp.Start()
	dp.waitVersion(t, 1)
	var last int64
	for _, name := range []string{"a", "b", "c", "d"} {
		last = cp.putRoute(t, name, "/"+name)
		dp.waitVersion(t, last)
	}
	// The cache is written once the engine took the version.
	testutil.Eventually(t, 5*time.Second, "the snapshot rewritten", func() bool {
		snap, _ := os.ReadFile(filepath.Join(dir, cacheSnapshot))
		m, err := DecodeMessage(snap)
		return err == nil && m.Version > 1 && len(m.Entities) > 2
	})
	dp.Close()
	dp2 := newDataPlane(t, cp.url, token, dir)
	if ok, err := dp2.LoadCache(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, routes := dp2.serving(); v != last || len(routes) != 6 {
		t.Errorf("cache after compaction: version %d, routes %v", v, routes)
	}
}

// waitCached waits until the cache in dir holds version.
func waitCached(t testing.TB, dir string, version int64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "the version in the cache", func() bool {
		c, _ := openCache(dir)
		snap, deltas, _ := c.load()
		for _, line := range append([][]byte{snap}, deltas...) {
			if m, err := DecodeMessage(line); err == nil && m.Version == version {
				return true
			}
		}
		return false
	})
}

// A journal entry that cannot be applied ends the reading: the data plane
// serves what came before it, and the entry is dropped from the journal.
func TestCacheReadUpToABadJournalEntry(t *testing.T) {
	dir := t.TempDir()
	c, _ := openCache(dir)
	route := func(name string, version int64) store.Entity {
		return store.Entity{Kind: store.Routes, Name: name, Source: store.SourceAPI, Version: version,
			Body: []byte(`{"name":"` + name + `","paths":["/` + name + `"],"mock":{}}`)}
	}
	put := func(e store.Entity) []store.Op {
		return []store.Op{{Kind: e.Kind, Name: e.Name, Source: e.Source, Body: e.Body, Version: e.Version}}
	}
	if err := c.saveSnapshot(appendSnapshot(nil, 1, "v1@1", []byte(`{}`), []store.Entity{route("a", 1)})); err != nil {
		t.Fatal(err)
	}
	bad := store.Op{Kind: store.Routes, Name: "x", Body: []byte(`{"name":"x","unknown":1}`), Version: 3}
	if err := c.appendDeltas([][]byte{
		appendDelta(nil, 1, 2, nil, put(route("b", 2))),
		appendDelta(nil, 2, 3, nil, []store.Op{bad}),
		appendDelta(nil, 3, 4, nil, put(route("d", 4))),
	}); err != nil {
		t.Fatal(err)
	}
	dp := newDataPlane(t, "http://127.0.0.1:1", token, dir)
	if ok, err := dp.LoadCache(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, routes := dp.serving(); v != 2 || len(routes) != 2 {
		t.Errorf("serving version %d, routes %v; want 2, [a b]", v, routes)
	}
	if !strings.Contains(dp.logs.String(), "read up to a bad entry") {
		t.Errorf("not logged:\n%s", dp.logs)
	}
	if len(dp.cache.journal) != 1 {
		t.Errorf("%d journal entries kept, want 1", len(dp.cache.journal))
	}
}
