package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/controlplane/store/memory"
	"github.com/tollgate/tollgate/controlplane/store/sqlstore"
)

var ctx = context.Background()

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const fileV1 = `
services:
  - {name: users, targets: [{url: "http://127.0.0.1:9001"}]}
routes:
  - {name: users-api, paths: [/users], service: users}
  - {name: old, paths: [/old], service: users}
consumers:
  - {name: alice, credentials: {key-auth: [{key: alice-key}]}}
`

const fileV2 = `
services:
  - {name: users, targets: [{url: "http://127.0.0.1:9001"}]}
routes:
  - {name: users-api, paths: [/users, /people], service: users}
consumers:
  - {name: alice, credentials: {key-auth: [{key: alice-key}]}}
`

func newController(t *testing.T, st store.Store) *Controller {
	t.Helper()
	c, err := New(ctx, st, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apiPut(kind store.Kind, name string, v any) store.Op {
	b, _ := json.Marshal(v)
	return store.Op{Kind: kind, Name: name, Source: store.SourceAPI, Body: b}
}

func routeNames(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Routes {
		out = append(out, r.Name)
	}
	return out
}

func TestFileAppliesWithoutDeletingWhatTheAPICreated(t *testing.T) {
	c := newController(t, memory.New())
	v1, err := c.ApplyFile(ctx, parse(t, fileV1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Change(ctx, store.Change{Actor: "ops", Ops: []store.Op{
		apiPut(store.Routes, "api-made", config.Route{Name: "api-made", Paths: []string{"/made"}, Service: "users"}),
		apiPut(store.Consumers, "bob", config.Consumer{Name: "bob"}),
	}}); err != nil {
		t.Fatal(err)
	}
	v3, err := c.ApplyFile(ctx, parse(t, fileV2))
	if err != nil {
		t.Fatal(err)
	}
	if v1 != 1 || v3 != 3 {
		t.Errorf("versions %d then %d, want 1 then 3", v1, v3)
	}
	cfg, v := c.Config()
	if v != 3 || strings.Join(routeNames(cfg), ",") != "api-made,users-api" || len(cfg.Consumers) != 2 {
		t.Fatalf("after the second file: v%d routes %v consumers %d", v, routeNames(cfg), len(cfg.Consumers))
	}
	if got := cfg.Routes[1].Paths; len(got) != 2 {
		t.Errorf("users-api paths %v: the file's change was not applied", got)
	}
	if c.Source(store.Routes, "users-api") != store.SourceFile || c.Source(store.Consumers, "bob") != store.SourceAPI {
		t.Error("sources not kept")
	}
	// The same file again changes nothing and makes no version.
	if v, err := c.ApplyFile(ctx, parse(t, fileV2)); err != nil || v != 3 {
		t.Errorf("re-applying the same file: v%d, %v", v, err)
	}
}

func TestChangesAreValidatedWhole(t *testing.T) {
	c := newController(t, memory.New())
	if _, err := c.ApplyFile(ctx, parse(t, fileV1)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Change(ctx, store.Change{Ops: []store.Op{
		apiPut(store.Routes, "bad", config.Route{Name: "bad", Paths: []string{"/bad"}, Service: "nope"}),
	}})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Error(), "routes[bad].service") {
		t.Fatalf("route to an unknown service: %v", err)
	}
	_, err = c.Change(ctx, store.Change{Ops: []store.Op{{Kind: store.Services, Name: "users", Delete: true}}})
	if !errors.As(err, &ve) || !strings.Contains(ve.Error(), "routes[users-api].service") {
		t.Fatalf("deleting a service in use: %v", err)
	}
	_, err = c.Change(ctx, store.Change{Ops: []store.Op{{Kind: store.Routes, Name: "x", Source: store.SourceAPI, Body: []byte(`{"name":"x","pathz":[]}`)}}})
	if !errors.As(err, &ve) || !strings.Contains(ve.Error(), "pathz") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, v := c.Config(); v != 1 {
		t.Errorf("refused changes made version %d", v)
	}
}

func TestAPIKeysJoinTheirConsumerAsHashes(t *testing.T) {
	c := newController(t, memory.New())
	if _, err := c.ApplyFile(ctx, parse(t, fileV1)); err != nil {
		t.Fatal(err)
	}
	k := Key{ID: "k1", Consumer: "alice", SHA256: strings.Repeat("ab", 32), Prefix: "tg_ab"}
	if _, err := c.Change(ctx, store.Change{Ops: []store.Op{apiPut(store.Keys, "k1", k)}}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := c.Config()
	creds := cfg.Consumers[0].Credentials.KeyAuth
	if len(creds) != 2 || creds[0].Key != "alice-key" || creds[1].SHA256 != k.SHA256 {
		t.Errorf("alice's key-auth credentials %+v", creds)
	}
	_, err := c.Change(ctx, store.Change{Ops: []store.Op{apiPut(store.Keys, "k2", Key{ID: "k2", Consumer: "ghost", SHA256: strings.Repeat("cd", 32)})}})
	if err == nil || !strings.Contains(err.Error(), `unknown consumer "ghost"`) {
		t.Errorf("key of an unknown consumer: %v", err)
	}
}

func TestSubscribersHearOfChangesAndControllersShareAStore(t *testing.T) {
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b := newController(t, st), newController(t, st)
	events, cancel := b.Subscribe()
	defer cancel()
	if _, err := a.ApplyFile(ctx, parse(t, fileV1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-events:
	default:
		t.Fatal("no signal after a refresh found a new version")
	}
	cfg, v := b.Config()
	if v != 1 || len(cfg.Routes) != 2 {
		t.Fatalf("b sees v%d with %d routes", v, len(cfg.Routes))
	}
	// b writes next: its version follows a's.
	ver, err := b.Change(ctx, store.Change{Ops: []store.Op{apiPut(store.Consumers, "bob", config.Consumer{Name: "bob"})}})
	if err != nil || ver.N != 2 {
		t.Fatalf("b's change: %+v %v", ver, err)
	}
}
