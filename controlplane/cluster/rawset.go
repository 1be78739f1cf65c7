package cluster

import "github.com/tollgate/tollgate/controlplane/store"

// rawSet is every entity as the store keeps it (JSON bodies, undecoded):
// what a snapshot is made of, on the control plane's side and in a data
// plane's cache.
type rawSet map[entityKey]store.Entity

type entityKey struct {
	kind store.Kind
	name string
}

func newRawSet(entities []store.Entity) rawSet {
	s := make(rawSet, len(entities))
	for _, e := range entities {
		s[entityKey{e.Kind, e.Name}] = e
	}
	return s
}

// apply applies ops as read from the store's log, skipping those of a
// version the set already has.
func (s rawSet) apply(ops []store.Op, have int64) {
	for _, op := range ops {
		if op.Version != 0 && op.Version <= have {
			continue
		}
		k := entityKey{op.Kind, op.Name}
		if op.Delete {
			delete(s, k)
			continue
		}
		s[k] = store.Entity{Kind: op.Kind, Name: op.Name, Source: op.Source, Body: op.Body, Version: op.Version}
	}
}

// values returns the entities in no particular order (store.SortEntities
// orders them): cheap enough to take under a lock, sorted outside it.
// Bodies are shared, not copied: they are never modified in place.
func (s rawSet) values() []store.Entity {
	out := make([]store.Entity, 0, len(s))
	for _, e := range s {
		out = append(out, e)
	}
	return out
}

// bodyBytes estimates the size of a snapshot of entities.
func bodyBytes(entities []store.Entity) int {
	n := 256
	for _, e := range entities {
		n += len(e.Body) + len(e.Name) + 64
	}
	return n
}
