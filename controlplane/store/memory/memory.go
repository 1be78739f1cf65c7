// Package memory is a Store kept in memory: for tests and `memory://`.
// It keeps the whole version log, so At replays it.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/controlplane/store"
)

// Store is an in-memory store.
type Store struct {
	mu       sync.RWMutex
	entities map[store.Kind]map[string]store.Entity
	log      []store.Version // log[i].N == i+1, with op bodies
	now      func() time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{entities: map[store.Kind]map[string]store.Entity{}, now: time.Now}
}

// Apply implements store.Store.
func (s *Store) Apply(_ context.Context, c store.Change) (store.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(len(s.log)) + 1
	v := store.Version{N: n, At: s.now().UTC(), Actor: c.Actor, Action: c.Action}
	// Ops are applied in order, so a later op of one change sees an
	// earlier one; an op that changes nothing is dropped.
	for _, op := range c.Ops {
		byName := s.entities[op.Kind]
		cur, exists := byName[op.Name]
		if op.Delete {
			if !exists {
				continue
			}
			delete(byName, op.Name)
		} else {
			if exists && cur.Source == op.Source && bytes.Equal(cur.Body, op.Body) {
				continue
			}
			if byName == nil {
				byName = map[string]store.Entity{}
				s.entities[op.Kind] = byName
			}
			byName[op.Name] = store.Entity{Kind: op.Kind, Name: op.Name, Source: op.Source, Body: clone(op.Body), Version: n}
		}
		op.Version, op.Body = n, clone(op.Body)
		v.Ops = append(v.Ops, op)
	}
	if len(v.Ops) == 0 {
		return store.Version{}, nil
	}
	s.log = append(s.log, v)
	return withoutBodies(v), nil
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, kind store.Kind, name string) (store.Entity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entities[kind][name]
	if !ok {
		return store.Entity{}, store.ErrNotFound
	}
	return e, nil
}

// List implements store.Store.
func (s *Store) List(_ context.Context, kind store.Kind) ([]store.Entity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]store.Entity, 0, len(s.entities[kind]))
	for _, e := range s.entities[kind] {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b store.Entity) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Current implements store.Store.
func (s *Store) Current(ctx context.Context) (store.State, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := store.State{Version: int64(len(s.log))}
	for _, k := range store.Kinds {
		for _, e := range s.entities[k] {
			st.Entities = append(st.Entities, e)
		}
	}
	store.SortEntities(st.Entities)
	return st, nil
}

// At implements store.Store.
func (s *Store) At(_ context.Context, n int64) (store.State, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n < 0 || n > int64(len(s.log)) {
		return store.State{}, store.ErrNoVersion
	}
	type key struct {
		kind store.Kind
		name string
	}
	m := map[key]store.Entity{}
	for _, v := range s.log[:n] {
		for _, op := range v.Ops {
			k := key{op.Kind, op.Name}
			if op.Delete {
				delete(m, k)
			} else {
				m[k] = store.Entity{Kind: op.Kind, Name: op.Name, Source: op.Source, Body: op.Body, Version: v.N}
			}
		}
	}
	st := store.State{Version: n, Entities: make([]store.Entity, 0, len(m))}
	for _, e := range m {
		st.Entities = append(st.Entities, e)
	}
	store.SortEntities(st.Entities)
	return st, nil
}

// Since implements store.Store.
func (s *Store) Since(_ context.Context, n int64) ([]store.Op, int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ops []store.Op
	for _, v := range s.log[min(max(n, 0), int64(len(s.log))):] {
		ops = append(ops, v.Ops...)
	}
	return ops, int64(len(s.log)), nil
}

// Versions implements store.Store.
func (s *Store) Versions(_ context.Context, before int64, limit int) ([]store.Version, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := int64(len(s.log))
	if before > 0 && before-1 < end {
		end = before - 1
	}
	var out []store.Version
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, withoutBodies(s.log[i]))
	}
	return out, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

func withoutBodies(v store.Version) store.Version {
	ops := make([]store.Op, len(v.Ops))
	for i, op := range v.Ops {
		op.Body = nil
		ops[i] = op
	}
	v.Ops = ops
	return v
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
