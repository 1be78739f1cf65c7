package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

func TestCacheFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "cache")
	c, err := openCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.nodeID()
	if err != nil || len(id) != 32 {
		t.Fatalf("node id %q %v", id, err)
	}
	if again, _ := c.nodeID(); again != id {
		t.Errorf("node id changed: %s then %s", id, again)
	}
	if snap, deltas, err := c.load(); snap != nil || deltas != nil || err != nil {
		t.Fatalf("empty cache: %q %q %v", snap, deltas, err)
	}

	snap1 := []byte(`{"type":"snapshot","version":1,"globals":{}}` + "\n")
	d2 := []byte(`{"type":"delta","version":2,"from":1}` + "\n")
	d3 := []byte(`{"type":"delta","version":3,"from":2}` + "\n")
	if err := c.saveSnapshot(snap1); err != nil {
		t.Fatal(err)
	}
	if err := c.appendDeltas([][]byte{d2}); err != nil {
		t.Fatal(err)
	}
	if err := c.appendDeltas([][]byte{d3}); err != nil {
		t.Fatal(err)
	}
	reopened, _ := openCache(dir)
	snap, deltas, err := reopened.load()
	if err != nil || string(snap) != string(snap1) || len(deltas) != 2 || string(deltas[1]) != string(d3) {
		t.Fatalf("read back: %q %q %v", snap, deltas, err)
	}
	if reopened.journalSize != len(d2)+len(d3) || reopened.snapshotSize != len(snap1) {
		t.Errorf("sizes %d %d", reopened.journalSize, reopened.snapshotSize)
	}

	// A new snapshot drops the journal of the old one.
	if err := reopened.saveSnapshot(snap1); err != nil {
		t.Fatal(err)
	}
	if _, deltas, _ := reopened.load(); len(deltas) != 0 {
		t.Errorf("journal kept across a new snapshot: %q", deltas)
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if strings.Contains(f.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", f.Name())
		}
	}
}

// A snapshot written by hand decodes the way the server's encoder writes
// it, entity bodies as they are, and messages stay on one line.
func TestMessagesRoundTrip(t *testing.T) {
	g, _ := encodeGlobals(Globals{Policies: config.Policies{"cors": map[string]any{"origins": []any{"*"}}}, Redis: "redis://r:6379"})
	entities := []store.Entity{
		{Kind: store.Routes, Name: "a\"b", Source: store.SourceAPI, Version: 3, Body: json.RawMessage("{\n  \"name\": \"a\"\n}")},
		{Kind: store.Plans, Name: "p", Source: store.SourceFile, Version: 1, Body: json.RawMessage(`{"name":"p"}`)},
	}
	line := appendSnapshot(nil, 3, "v1@1", g, entities)
	if strings.Count(string(line), "\n") != 1 || !strings.HasSuffix(string(line), "\n") {
		t.Fatalf("not one line: %q", line)
	}
	m, err := DecodeMessage(line)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeSnapshot || m.Version != 3 || m.Epoch != "v1@1" || m.Globals.Redis != "redis://r:6379" ||
		len(m.Entities) != 2 || m.Entities[0].Name != "a\"b" || string(m.Entities[0].Body) != `{"name":"a"}` || m.Entities[1].Version != 1 {
		t.Fatalf("decoded %+v", m)
	}

	ops := []store.Op{{Kind: store.Routes, Name: "a", Delete: true, Version: 4}, {Kind: store.Routes, Name: "b", Source: store.SourceAPI, Body: json.RawMessage(`{"name":"b"}`), Version: 4}}
	m, err = DecodeMessage(appendDelta(nil, 3, 4, nil, ops))
	if err != nil || m.Type != TypeDelta || m.From != 3 || m.Version != 4 || m.Globals != nil || !m.Ops[0].Delete || string(m.Ops[1].Body) != `{"name":"b"}` {
		t.Fatalf("delta %+v %v", m, err)
	}
	if m, err := DecodeMessage(appendHeartbeat(nil, 7)); err != nil || m.Type != TypeHeartbeat || m.Version != 7 {
		t.Fatalf("heartbeat %+v %v", m, err)
	}

	for _, bad := range []string{`{"type":"gossip"}`, `{"type":"snapshot","version":1}`, `{"type":"delta","from":5,"version":4}`, `{`} {
		if _, err := DecodeMessage([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// Cluster settings are checked when the file loads, with their position.
func TestClusterSettingsAreValidated(t *testing.T) {
	_, err := config.Parse("t.yaml", []byte("cluster:\n  control_plane: \"https://cp:8005\"\n  tls: {cert: cp.pem}\n  cert: dp.pem\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"t.yaml:3:3: key file is required", "t.yaml:4:3: a client certificate needs its key (cluster.key)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
