// Package store keeps the control plane's entities (services, routes,
// consumers, plans, consumer keys) and their history.
//
// Every change is a numbered version that records who made it, when, and
// each entity it put or deleted: the version log is the audit log, the
// source of deltas for data planes (Since), and what rollback replays (At).
// Entities are kept as JSON documents of the configuration types, so the
// store never needs a schema change when a field is added to them.
//
// Implementations: memory (tests and `memory://`), sqlite (the default, one
// file, no cgo) and postgres (clusters). They pass the same suite, in
// storetest.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Kind names a collection of entities, as the admin API does.
type Kind string

// The kinds of entities.
const (
	Services  Kind = "services"
	Routes    Kind = "routes"
	Consumers Kind = "consumers"
	Plans     Kind = "plans"
	// Keys are consumer API keys created through the admin API or the
	// portal, kept as hashes.
	Keys Kind = "keys"
)

// Kinds lists every kind, in the order a configuration is applied.
var Kinds = []Kind{Plans, Services, Routes, Consumers, Keys}

// Source says who owns an entity. Applying the configuration file only
// ever replaces or deletes entities whose source is the file; what the
// admin API or the portal created stays.
type Source string

// Sources of entities.
const (
	SourceFile Source = "file"
	SourceAPI  Source = "api"
)

// Entity is one stored entity.
type Entity struct {
	Kind   Kind            `json:"kind"`
	Name   string          `json:"name"`
	Source Source          `json:"source"`
	Body   json.RawMessage `json:"body"`
	// Version is the version that last changed the entity.
	Version int64 `json:"version"`
}

// Op is one put or delete within a change.
type Op struct {
	Kind   Kind            `json:"kind"`
	Name   string          `json:"name"`
	Delete bool            `json:"delete,omitempty"`
	Source Source          `json:"source,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"` // for a put
	// Version is set on ops read back from the log.
	Version int64 `json:"version,omitempty"`
}

// Change is a set of ops applied atomically as one new version.
type Change struct {
	Actor  string // who: an admin token's name, "file", "portal:alice"
	Action string // what, in words: "PUT /api/routes/users", "rollback to 12"
	Ops    []Op
}

// Version describes one applied change.
type Version struct {
	N      int64     `json:"version"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	// Ops are the entities the change put or deleted (bodies left out when
	// listing).
	Ops []Op `json:"ops,omitempty"`
}

// State is every entity at one version.
type State struct {
	Version  int64
	Entities []Entity // sorted by kind (in Kinds order), then name
}

// Errors.
var (
	ErrNotFound = errors.New("not found")
	// ErrNoVersion is returned by At for a version that does not exist.
	ErrNoVersion = errors.New("no such version")
)

// Store is the control plane's storage.
type Store interface {
	// Apply applies the ops of c atomically as a new version. Ops that
	// change nothing (a put of the same body and source, a delete of
	// nothing) are dropped; when none is left no version is made and the
	// returned Version has N = 0.
	Apply(ctx context.Context, c Change) (Version, error)
	// Get returns one entity, or ErrNotFound.
	Get(ctx context.Context, kind Kind, name string) (Entity, error)
	// List returns the entities of a kind, sorted by name.
	List(ctx context.Context, kind Kind) ([]Entity, error)
	// Current returns every entity at the latest version.
	Current(ctx context.Context) (State, error)
	// At returns every entity as it was right after version n (0: empty),
	// or ErrNoVersion.
	At(ctx context.Context, n int64) (State, error)
	// Since returns the ops of the versions after n, in order, and the
	// latest version.
	Since(ctx context.Context, n int64) ([]Op, int64, error)
	// Versions returns up to limit versions, newest first, before version
	// before (0: from the latest), without op bodies.
	Versions(ctx context.Context, before int64, limit int) ([]Version, error)
	// Close releases the store.
	Close() error
}

// SortEntities orders entities by kind (in Kinds order), then name.
func SortEntities(es []Entity) {
	slices.SortFunc(es, func(a, b Entity) int {
		if c := cmp.Compare(kindIndex(a.Kind), kindIndex(b.Kind)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

func kindIndex(k Kind) int { return slices.Index(Kinds, k) }
