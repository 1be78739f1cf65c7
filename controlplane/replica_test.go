package controlplane

import (
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
)

const sha64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// A replica fed the store's snapshot and then its ops assembles the same
// configuration as the controller that wrote them, API keys included.
func TestReplicaFollowsTheController(t *testing.T) {
	st := memory.New()
	c := newController(t, st)
	if _, err := c.ApplyFile(ctx, parse(t, fileV1)); err != nil {
		t.Fatal(err)
	}
	state, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica()
	if err := r.Reset(state.Entities, state.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Change(ctx, store.Change{Ops: []store.Op{
		apiPut(store.Keys, "k1", Key{ID: "k1", Consumer: "alice", SHA256: sha64}),
		apiPut(store.Routes, "orders", config.Route{Name: "orders", Paths: []string{"/orders"}, Service: "users"}),
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyFile(ctx, parse(t, fileV2)); err != nil {
		t.Fatal(err)
	}
	ops, latest, err := st.Since(ctx, state.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ops, latest); err != nil {
		t.Fatal(err)
	}
	want, wantVersion := c.Config()
	got := r.Config(config.Default())
	if r.Version() != wantVersion || r.Len() != 5 {
		t.Fatalf("version %d, %d entities; want %d, 5", r.Version(), r.Len(), wantVersion)
	}
	names := func(cfg *config.Config) (out []string) {
		for _, rt := range cfg.Routes {
			out = append(out, rt.Name)
		}
		return out
	}
	if g, w := names(got), names(want); len(g) != 2 || g[0] != w[0] || g[1] != w[1] {
		t.Errorf("routes %v, want %v", g, w)
	}
	if keys := got.Consumers[0].Credentials.KeyAuth; len(keys) != 2 || keys[1].SHA256 != sha64 {
		t.Errorf("alice's keys %+v: the API key must join the file's", keys)
	}

	// Ops the replica already has (a delta overlapping a snapshot) apply once.
	if err := r.Apply(ops, latest); err != nil || r.Version() != latest {
		t.Errorf("replayed ops: %v, version %d", err, r.Version())
	}
}

// Apply is all or nothing: one undecodable entity leaves the replica as it
// was.
func TestReplicaApplyIsAtomic(t *testing.T) {
	r := NewReplica()
	good := apiPut(store.Routes, "a", config.Route{Name: "a", Paths: []string{"/a"}})
	good.Version = 1
	if err := r.Apply([]store.Op{good}, 1); err != nil {
		t.Fatal(err)
	}
	del := store.Op{Kind: store.Routes, Name: "a", Delete: true, Version: 2}
	bad := store.Op{Kind: store.Routes, Name: "b", Body: []byte(`{"name":"b","pathz":["/b"]}`), Version: 2}
	if err := r.Apply([]store.Op{del, bad}, 2); err == nil {
		t.Fatal("an unknown field was accepted")
	}
	if r.Version() != 1 || r.Len() != 1 {
		t.Errorf("after a refused delta: version %d, %d entities; want 1, 1", r.Version(), r.Len())
	}
	if err := r.Apply([]store.Op{{Kind: "widgets", Name: "w", Delete: true}}, 3); err == nil {
		t.Error("an unknown kind was accepted")
	}
	if err := r.Reset([]store.Entity{{Kind: store.Plans, Name: "p", Body: []byte(`[]`)}}, 9); err == nil || r.Version() != 1 {
		t.Errorf("a bad snapshot: %v, version %d", err, r.Version())
	}
}
