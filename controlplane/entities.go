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
	var err error
	switch kind {
	case store.Services:
		var v config.Service
		if err = strictJSON(body, &v); err == nil {
			s.services[name] = v
		}
	case store.Routes:
		var v config.Route
		if err = strictJSON(body, &v); err == nil {
			s.routes[name] = v
		}
	case store.Consumers:
		var v config.Consumer
		if err = strictJSON(body, &v); err == nil {
			s.consumers[name] = v
		}
	case store.Plans:
		var v config.Plan
		if err = strictJSON(body, &v); err == nil {
			s.plans[name] = v
		}
	case store.Keys:
		var v Key
		if err = strictJSON(body, &v); err == nil {
			s.keys[name] = v
		}
	default:
		return fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", kind, name, err)
	}
	if s.source[kind] == nil {
		s.source[kind] = map[string]store.Source{}
	}
	s.source[kind][name] = src
	return nil
}

func (s *entitySet) remove(kind store.Kind, name string) {
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

func (s *entitySet) clone() *entitySet {
	c := newEntitySet()
	for k, v := range s.services {
		c.services[k] = v
	}
	for k, v := range s.routes {
		c.routes[k] = v
	}
	for k, v := range s.consumers {
		c.consumers[k] = v
	}
	for k, v := range s.plans {
		c.plans[k] = v
	}
	for k, v := range s.keys {
		c.keys[k] = v
	}
	for kind, m := range s.source {
		c.source[kind] = make(map[string]store.Source, len(m))
		for k, v := range m {
			c.source[kind][k] = v
		}
	}
	return c
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
	cfg.Consumers = sortedValues(s.consumers)
	byConsumer := map[string][]Key{}
	for _, k := range sortedValues(s.keys) {
		byConsumer[k.Consumer] = append(byConsumer[k.Consumer], k)
	}
	for i := range cfg.Consumers {
		c := &cfg.Consumers[i]
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
	return &cfg
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
