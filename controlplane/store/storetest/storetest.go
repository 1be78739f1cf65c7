// Package storetest is the behaviour every store.Store implementation must
// have, as one suite each implementation's tests run.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/controlplane/store"
)

// Run runs the suite. open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"ApplyGetList", testApplyGetList},
		{"NoOpChangesMakeNoVersion", testNoOps},
		{"VersionsAreTheAuditLog", testVersions},
		{"AtReplaysHistory", testAt},
		{"SinceGivesDeltas", testSince},
		{"ConcurrentApplyNumbersEveryVersion", testConcurrent},
		{"LargeChange", testLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

func body(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func put(kind store.Kind, name string, v any) store.Op {
	return store.Op{Kind: kind, Name: name, Source: store.SourceAPI, Body: body(v)}
}

func del(kind store.Kind, name string) store.Op {
	return store.Op{Kind: kind, Name: name, Delete: true}
}

func mustApply(t *testing.T, s store.Store, ops ...store.Op) store.Version {
	t.Helper()
	v, err := s.Apply(ctx, store.Change{Actor: "ops", Action: "test", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func names(es []store.Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Kind) + "/" + e.Name
	}
	return out
}

func sameJSON(t *testing.T, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("stored body %q is not JSON: %v", got, err)
	}
	json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body %s, want %s", got, want)
	}
}

func testApplyGetList(t *testing.T, s store.Store) {
	v := mustApply(t, s,
		put(store.Routes, "b", map[string]any{"paths": []string{"/b"}}),
		put(store.Routes, "a", map[string]any{"paths": []string{"/a"}}),
		store.Op{Kind: store.Services, Name: "users", Source: store.SourceFile, Body: body(map[string]any{"name": "users"})},
	)
	if v.N != 1 || len(v.Ops) != 3 {
		t.Fatalf("first version %+v", v)
	}
	e, err := s.Get(ctx, store.Routes, "a")
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != store.Routes || e.Name != "a" || e.Source != store.SourceAPI || e.Version != 1 {
		t.Errorf("entity %+v", e)
	}
	sameJSON(t, e.Body, body(map[string]any{"paths": []string{"/a"}}))
	if _, err := s.Get(ctx, store.Routes, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing entity: err %v", err)
	}
	l, err := s.List(ctx, store.Routes)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l); !reflect.DeepEqual(got, []string{"routes/a", "routes/b"}) {
		t.Errorf("List = %v", got)
	}
	if e, _ := s.Get(ctx, store.Services, "users"); e.Source != store.SourceFile {
		t.Errorf("source %q, want file", e.Source)
	}

	v = mustApply(t, s, del(store.Routes, "a"), put(store.Routes, "b", map[string]any{"paths": []string{"/bb"}}))
	if v.N != 2 {
		t.Fatalf("second version %+v", v)
	}
	cur, err := s.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 2 || !reflect.DeepEqual(names(cur.Entities), []string{"services/users", "routes/b"}) {
		t.Errorf("Current = %d %v", cur.Version, names(cur.Entities))
	}
	if e, _ := s.Get(ctx, store.Routes, "b"); e.Version != 2 {
		t.Errorf("b last changed by %d, want 2", e.Version)
	}
}

func testNoOps(t *testing.T, s store.Store) {
	mustApply(t, s, put(store.Plans, "pro", map[string]any{"name": "pro"}))
	v := mustApply(t, s, put(store.Plans, "pro", map[string]any{"name": "pro"}), del(store.Plans, "none"))
	if v.N != 0 {
		t.Errorf("a change of nothing made version %d", v.N)
	}
	// The same body from another source is a change: ownership moved.
	op := put(store.Plans, "pro", map[string]any{"name": "pro"})
	op.Source = store.SourceFile
	if v := mustApply(t, s, op); v.N != 2 || len(v.Ops) != 1 {
		t.Errorf("source change: %+v", v)
	}
}

func testVersions(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Minute)
	for i := range 5 {
		_, err := s.Apply(ctx, store.Change{Actor: fmt.Sprint("user", i), Action: fmt.Sprint("change ", i),
			Ops: []store.Op{put(store.Consumers, fmt.Sprint("c", i), map[string]any{"n": i})}})
		if err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.Versions(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].N != 5 || vs[2].N != 3 {
		t.Fatalf("Versions(0, 3) = %+v", vs)
	}
	v := vs[0]
	if v.Actor != "user4" || v.Action != "change 4" || v.At.Before(before) || v.At.After(time.Now().Add(time.Minute)) {
		t.Errorf("version %+v", v)
	}
	if len(v.Ops) != 1 || v.Ops[0].Name != "c4" || v.Ops[0].Kind != store.Consumers || v.Ops[0].Body != nil {
		t.Errorf("version ops %+v (bodies are left out of listings)", v.Ops)
	}
	vs, _ = s.Versions(ctx, 3, 10)
	if len(vs) != 2 || vs[0].N != 2 || vs[1].N != 1 {
		t.Errorf("Versions(before 3) = %+v", vs)
	}
}

func testAt(t *testing.T, s store.Store) {
	mustApply(t, s, put(store.Routes, "a", map[string]any{"v": 1}), put(store.Routes, "b", map[string]any{"v": 1}))
	mustApply(t, s, put(store.Routes, "a", map[string]any{"v": 2}), del(store.Routes, "b"))
	mustApply(t, s, put(store.Routes, "c", map[string]any{"v": 3}))
	st, err := s.At(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 1 || !reflect.DeepEqual(names(st.Entities), []string{"routes/a", "routes/b"}) {
		t.Fatalf("At(1) = %d %v", st.Version, names(st.Entities))
	}
	sameJSON(t, st.Entities[0].Body, body(map[string]any{"v": 1}))
	st, _ = s.At(ctx, 2)
	if !reflect.DeepEqual(names(st.Entities), []string{"routes/a"}) {
		t.Errorf("At(2) = %v", names(st.Entities))
	}
	sameJSON(t, st.Entities[0].Body, body(map[string]any{"v": 2}))
	if st, _ := s.At(ctx, 0); len(st.Entities) != 0 {
		t.Errorf("At(0) = %v, want empty", names(st.Entities))
	}
	if _, err := s.At(ctx, 4); !errors.Is(err, store.ErrNoVersion) {
		t.Errorf("At(4): err %v", err)
	}
}

func testSince(t *testing.T, s store.Store) {
	mustApply(t, s, put(store.Routes, "a", map[string]any{"v": 1}))
	mustApply(t, s, put(store.Routes, "b", map[string]any{"v": 1}), del(store.Routes, "a"))
	ops, latest, err := s.Since(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if latest != 2 || len(ops) != 2 || ops[0].Name != "b" || ops[0].Version != 2 || !ops[1].Delete || ops[1].Name != "a" {
		t.Fatalf("Since(1) = %+v, %d", ops, latest)
	}
	sameJSON(t, ops[0].Body, body(map[string]any{"v": 1}))
	if ops, latest, _ := s.Since(ctx, 2); len(ops) != 0 || latest != 2 {
		t.Errorf("Since(latest) = %v, %d", ops, latest)
	}
	if ops, _, _ := s.Since(ctx, 0); len(ops) != 3 {
		t.Errorf("Since(0) = %d ops, want 3", len(ops))
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.Apply(ctx, store.Change{Actor: "w", Ops: []store.Op{put(store.Consumers, fmt.Sprintf("w%d-%d", w, i), map[string]any{"i": i})}})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vs, err := s.Versions(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != writers*each {
		t.Fatalf("%d versions, want %d", len(vs), writers*each)
	}
	for i, v := range vs {
		if v.N != int64(writers*each-i) {
			t.Fatalf("versions not numbered without gaps: %d at %d", v.N, i)
		}
	}
}

func testLarge(t *testing.T, s store.Store) {
	const n = 5000
	ops := make([]store.Op, n)
	for i := range ops {
		ops[i] = put(store.Consumers, fmt.Sprintf("c%05d", i), map[string]any{"name": fmt.Sprintf("c%05d", i), "groups": []string{"g"}})
	}
	mustApply(t, s, ops...)
	l, err := s.List(ctx, store.Consumers)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != n || l[0].Name != "c00000" || l[n-1].Name != fmt.Sprintf("c%05d", n-1) {
		t.Fatalf("List after a large change: %d entities", len(l))
	}
	st, err := s.At(ctx, 1)
	if err != nil || len(st.Entities) != n {
		t.Fatalf("At(1): %d entities, err %v", len(st.Entities), err)
	}
}
