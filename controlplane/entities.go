package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// Key is a consumer API key created through the admin API or the portal.
// Only its SHA-256 is kept; the key itself is shown once, when created.
type Key struct {
	ID       string `json:"id"`
	Consumer string `json:"consumer"`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `json:"sha256"`
	// Prefix is the key's first characters, to tell keys apart in lists.
	Prefix    string `json:"prefix"`
	CreatedAt string `json:"created_at"`
}

// entitySet is every entity of a configuration, decoded, by kind and name.
type entitySet struct {
	services  map[string]config.Service
	routes    map[string]config.Route
	consumers map[string]config.Consumer
	plans     map[string]config.Plan
	keys      map[string]Key
	source    map[store.Kind]map[string]store.Source
	// consumerList is configure's consumers (sorted, API keys joined),
	// kept until a consumer or a key changes: with many consumers, sorting
	// and joining them is most of what assembling a configuration costs.
	// It is never written once made, so configurations share it.
	consumerList []config.Consumer
	// misnamed is set once an entity's name differs from the name it is
	// stored under: names are then not unique by construction, and only a
	// whole validation can tell.
	misnamed bool
}

func newEntitySet() *entitySet {
	return &entitySet{
		services: map[string]config.Service{}, routes: map[string]config.Route{},
		consumers: map[string]config.Consumer{}, plans: map[string]config.Plan{}, keys: map[string]Key{},
		source: map[store.Kind]map[string]store.Source{},
	}
}

// strictJSON decodes one entity document, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("unexpected data after the document")
	}
	return nil
}

// put decodes an entity's body into the set.
func (s *entitySet) put(kind store.Kind, name string, src store.Source, body []byte) error {
	if !knownKind(kind) {
		return fmt.Errorf("unknown kind %q", kind)
	}
	v, err := decodeEntity(kind, body)
	if err != nil {
		return fmt.Errorf("%s %q: %w", kind, name, err)
	}
	s.set(kind, name, src, v)
	return nil
}

// get returns an entity as decodeEntity returned it, and its source.
func (s *entitySet) get(kind store.Kind, name string) (v any, src store.Source, ok bool) {
	switch kind {
	case store.Services:
		v, ok = s.services[name]
	case store.Routes:
		v, ok = s.routes[name]
	case store.Consumers:
		v, ok = s.consumers[name]
	case store.Plans:
		v, ok = s.plans[name]
	case store.Keys:
		v, ok = s.keys[name]
	}
	return v, s.source[kind][name], ok
}

func (s *entitySet) remove(kind store.Kind, name string) {
	s.changed(kind)
	switch kind {
	case store.Services:
		delete(s.services, name)
	case store.Routes:
		delete(s.routes, name)
	case store.Consumers:
		delete(s.consumers, name)
	case store.Plans:
		delete(s.plans, name)
	case store.Keys:
		delete(s.keys, name)
	}
	delete(s.source[kind], name)
}

func (s *entitySet) apply(op store.Op) error {
	if op.Delete {
		s.remove(op.Kind, op.Name)
		return nil
	}
	return s.put(op.Kind, op.Name, op.Source, op.Body)
}

// changed drops what was derived from entities of kind.
func (s *entitySet) changed(kind store.Kind) {
	if kind == store.Consumers || kind == store.Keys {
		s.consumerList = nil
	}
}

// undo is what brings entities back to where they were before some ops:
// applying ops in place and undoing them on refusal costs what the ops
// touch, where copying the set first would cost every entity.
type undo []undoStep

type undoStep struct {
	kind store.Kind
	name string
	had  bool
	v    any
	src  store.Source
}

// applyUndoable applies op, recording in u how to take it back.
func (s *entitySet) applyUndoable(op store.Op, u *undo) error {
	v, src, had := s.get(op.Kind, op.Name)
	if err := s.apply(op); err != nil {
		return err
	}
	*u = append(*u, undoStep{kind: op.Kind, name: op.Name, had: had, v: v, src: src})
	return nil
}

// rollback takes back the ops recorded in u, last first.
func (s *entitySet) rollback(u undo) {
	for i := len(u) - 1; i >= 0; i-- {
		st := u[i]
		if st.had {
			s.set(st.kind, st.name, st.src, st.v)
		} else {
			s.remove(st.kind, st.name)
		}
	}
}

// sourceOf says who owns an entity ("" when it does not exist).
func (s *entitySet) sourceOf(kind store.Kind, name string) store.Source { return s.source[kind][name] }

// configure returns base (the file's settings and global policies) with the
// set's entities, sorted by name so that a configuration assembles the same
// way every time. API keys join their consumers' key-auth credentials.
func (s *entitySet) configure(base *config.Config) *config.Config {
	cfg := *base
	cfg.Services = sortedValues(s.services)
	cfg.Routes = sortedValues(s.routes)
	cfg.Plans = sortedValues(s.plans)
	cfg.Consumers = s.consumersWithKeys()
	return &cfg
}

// consumersWithKeys returns the consumers sorted by name, API keys joined
// to their key-auth credentials. The slice is shared: its capacity is its
// length, so that an append copies it, and nobody may write to it.
func (s *entitySet) consumersWithKeys() []config.Consumer {
	if s.consumerList != nil {
		return s.consumerList
	}
	list := sortedValues(s.consumers)
	byConsumer := map[string][]Key{}
	for _, k := range sortedValues(s.keys) {
		byConsumer[k.Consumer] = append(byConsumer[k.Consumer], k)
	}
	for i := range list {
		c := &list[i]
		keys := byConsumer[c.Name]
		if len(keys) == 0 {
			continue
		}
		creds := append([]config.KeyCredential(nil), c.Credentials.KeyAuth...)
		for _, k := range keys {
			creds = append(creds, config.KeyCredential{SHA256: k.SHA256})
		}
		c.Credentials.KeyAuth = creds
	}
	s.consumerList = list[:len(list):len(list)]
	return s.consumerList
}

// fileOps returns the ops that make the store's file-owned entities those
// of cfg: every entity the file names is put (the file takes over one of
// the same name created through the API), and file-owned entities it no
// longer names are deleted. Entities created through the API or the portal
// are never deleted.
func fileOps(cfg *config.Config, cur *entitySet) ([]store.Op, error) {
	var ops []store.Op
	named := map[store.Kind]map[string]bool{}
	add := func(kind store.Kind, name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if named[kind] == nil {
			named[kind] = map[string]bool{}
		}
		named[kind][name] = true
		ops = append(ops, store.Op{Kind: kind, Name: name, Source: store.SourceFile, Body: b})
		return nil
	}
	for _, v := range cfg.Plans {
		if err := add(store.Plans, v.Name, v); err != nil {
			return nil, err
		}
	}
	for _, v := range cfg.Services {
		if err := add(store.Services, v.Name, v); err != nil {
			return nil, err
		}
	}
	for _, v := range cfg.Routes {
		if err := add(store.Routes, v.Name, v); err != nil {
			return nil, err
		}
	}
	for _, v := range cfg.Consumers {
		if err := add(store.Consumers, v.Name, v); err != nil {
			return nil, err
		}
	}
	// Deletions last and in reverse dependency order: routes before the
	// services they use.
	for i := len(store.Kinds) - 1; i >= 0; i-- {
		kind := store.Kinds[i]
		for _, name := range sortedKeys(cur.source[kind]) {
			if cur.source[kind][name] == store.SourceFile && !named[kind][name] {
				ops = append(ops, store.Op{Kind: kind, Name: name, Delete: true})
			}
		}
	}
	return ops, nil
}
