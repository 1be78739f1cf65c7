package controlplane

import (
	"fmt"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// Replica is a copy of the control plane's entities kept by a data plane:
// loaded whole from a snapshot, then moved forward by the ops of each
// version, and assembled into a configuration the same way the Controller
// assembles its own (API keys joining their consumers' key-auth
// credentials).
//
// A Replica is not safe for concurrent use.
type Replica struct {
	set     *entitySet
	version int64
}

// NewReplica returns an empty replica at version 0.
func NewReplica() *Replica { return &Replica{set: newEntitySet()} }

// Version returns the version the replica's entities are at.
func (r *Replica) Version() int64 { return r.version }

// Len returns the number of entities.
func (r *Replica) Len() int {
	s := r.set
	return len(s.services) + len(s.routes) + len(s.consumers) + len(s.plans) + len(s.keys)
}

// Reset replaces every entity with those of a snapshot at version. On error
// (an entity that does not decode) the replica is left as it was.
func (r *Replica) Reset(entities []store.Entity, version int64) error {
	next := newEntitySet()
	for _, e := range entities {
		if err := next.put(e.Kind, e.Name, e.Source, e.Body); err != nil {
			return err
		}
	}
	r.set, r.version = next, version
	return nil
}

// Apply moves the replica to version by ops, as read from the store's log
// (Store.Since). Ops that carry a version the replica already has are
// skipped, so a delta that overlaps what a snapshot brought applies once.
// Apply is all or nothing: every put is decoded before anything changes.
func (r *Replica) Apply(ops []store.Op, version int64) error {
	vals := make([]any, len(ops))
	for i, op := range ops {
		if r.skip(op) {
			continue
		}
		if !knownKind(op.Kind) {
			return fmt.Errorf("unknown kind %q", op.Kind)
		}
		if op.Delete {
			continue
		}
		v, err := decodeEntity(op.Kind, op.Body)
		if err != nil {
			return fmt.Errorf("%s %q: %w", op.Kind, op.Name, err)
		}
		vals[i] = v
	}
	for i, op := range ops {
		switch {
		case r.skip(op):
		case op.Delete:
			r.set.remove(op.Kind, op.Name)
		default:
			r.set.set(op.Kind, op.Name, op.Source, vals[i])
		}
	}
	r.version = version
	return nil
}

func (r *Replica) skip(op store.Op) bool { return op.Version != 0 && op.Version <= r.version }

// Config returns base with the replica's entities (base's own entity lists
// are ignored). The result shares nothing mutable with the replica's maps,
// but its slices may share backing arrays with decoded entities: treat it
// as read-only apart from ApplyDefaults, and call Config again rather than
// edit it.
func (r *Replica) Config(base *config.Config) *config.Config {
	return r.set.configure(base)
}

// Globals returns the settings of the configuration file that every data
// plane shares (the global policies and the Redis URL), with the version of
// the entities at the same moment.
func (c *Controller) Globals() (policies config.Policies, redis string, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Policies, c.base.Redis, c.version
}

func knownKind(k store.Kind) bool {
	for _, known := range store.Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// decodeEntity decodes one entity document of a kind, strictly.
func decodeEntity(kind store.Kind, body []byte) (any, error) {
	switch kind {
	case store.Services:
		return decodeAs[config.Service](body)
	case store.Routes:
		return decodeAs[config.Route](body)
	case store.Consumers:
		return decodeAs[config.Consumer](body)
	case store.Plans:
		return decodeAs[config.Plan](body)
	case store.Keys:
		return decodeAs[Key](body)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func decodeAs[T any](body []byte) (any, error) {
	var v T
	err := strictJSON(body, &v)
	return v, err
}

// set stores a value decodeEntity returned.
func (s *entitySet) set(kind store.Kind, name string, src store.Source, v any) {
	s.changed(kind)
	var named string
	switch kind {
	case store.Services:
		s.services[name] = v.(config.Service)
		named = v.(config.Service).Name
	case store.Routes:
		s.routes[name] = v.(config.Route)
		named = v.(config.Route).Name
	case store.Consumers:
		s.consumers[name] = v.(config.Consumer)
		named = v.(config.Consumer).Name
	case store.Plans:
		s.plans[name] = v.(config.Plan)
		named = v.(config.Plan).Name
	case store.Keys:
		s.keys[name] = v.(Key)
		named = name // keys have no name of their own to validate
	}
	if named != name {
		s.misnamed = true
	}
	if s.source[kind] == nil {
		s.source[kind] = map[string]store.Source{}
	}
	s.source[kind][name] = src
}
