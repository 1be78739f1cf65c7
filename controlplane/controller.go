// Package controlplane holds the control plane: the store of entities
// (services, routes, consumers, plans, consumer keys) with its versions, the
// rules that join the configuration file and the admin API, and the
// configuration every data plane is given.
//
// The Controller is the one way entities change. Each change is checked by
// assembling the configuration it would produce and validating it whole
// (a route naming a deleted service is refused), then applied to the store
// as one new version, then announced to subscribers (the local engine,
// remote data planes). Decoded entities are kept in memory and updated by
// the ops of each version, so a change costs a validation, not a reload of
// every entity.
package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// Controller owns the entities and their versions.
type Controller struct {
	store store.Store

	mu      sync.Mutex // serialises changes and guards what follows
	base    *config.Config
	current *entitySet
	version int64
	gen     uint64 // counts announcements: base or entities changed
	subs    map[chan struct{}]struct{}
	check   func(*config.Config) error
	// valid is set while current is known to pass validation whole (with
	// base): a change then only needs what it touches validated.
	valid bool
}

// SetCheck adds a check every new configuration must pass before it is
// stored, besides validation: the data plane compiling it, say, so that
// nothing is stored that the gateway would refuse.
func (c *Controller) SetCheck(check func(*config.Config) error) {
	c.mu.Lock()
	c.check = check
	c.mu.Unlock()
}

// New loads the store's current entities. base holds the settings that
// come from the file only (server, admin, redis, global policies...); its
// entity lists are ignored (ApplyFile brings them into the store).
func New(ctx context.Context, st store.Store, base *config.Config) (*Controller, error) {
	c := &Controller{store: st, base: base, current: newEntitySet(), subs: map[chan struct{}]struct{}{}}
	state, err := st.Current(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range state.Entities {
		if err := c.current.put(e.Kind, e.Name, e.Source, e.Body); err != nil {
			return nil, fmt.Errorf("stored entity: %w", err)
		}
	}
	c.version = state.Version
	return c, nil
}

// Store returns the underlying store.
func (c *Controller) Store() store.Store { return c.store }

// ValidationError lists what is wrong with a change, with paths naming
// entities by name: "routes[users-api].service".
type ValidationError struct {
	Problems []config.FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

// Config returns the configuration in force and its version.
func (c *Controller) Config() (*config.Config, int64) {
	cfg, v, _ := c.Snapshot()
	return cfg, v
}

// Snapshot is Config with the generation: a number that grows with every
// announced change (of entities or of the file's other settings), to tell
// whether anything changed since a configuration was last taken.
func (c *Controller) Snapshot() (*config.Config, int64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current.configure(c.base), c.version, c.gen
}

// Source says who owns an entity: store.SourceFile, store.SourceAPI, or ""
// when it does not exist.
func (c *Controller) Source(kind store.Kind, name string) store.Source {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current.sourceOf(kind, name)
}

// ApplyFile makes the file's entities those of the store (see fileOps) and
// takes its other settings as the new base. It returns the version in
// force afterwards.
func (c *Controller) ApplyFile(ctx context.Context, file *config.Config) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		return 0, err
	}
	ops, err := fileOps(file, c.current)
	if err != nil {
		return 0, err
	}
	base := *file
	base.Services, base.Routes, base.Consumers, base.Plans = nil, nil, nil, nil
	prevBase := c.base
	c.base, c.valid = &base, false // a new base: validate everything
	if _, err := c.change(ctx, store.Change{Actor: "file", Action: "apply the configuration file", Ops: ops}); err != nil {
		c.base = prevBase
		return 0, err
	}
	c.notify() // the base may have changed without a new version
	return c.version, nil
}

// Change validates and applies ch as a new version. A change that leaves
// everything as it was makes no version and returns N = 0.
func (c *Controller) Change(ctx context.Context, ch store.Change) (store.Version, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx); err != nil {
		return store.Version{}, err
	}
	return c.change(ctx, ch)
}

// change applies ch's ops to the entities in place, then checks and stores
// them; anything refused is taken back, leaving the entities as they were.
func (c *Controller) change(ctx context.Context, ch store.Change) (_ store.Version, err error) {
	next := c.current
	var u undo
	defer func() {
		if err != nil {
			next.rollback(u)
		}
	}()
	for _, op := range ch.Ops {
		if err := next.applyUndoable(op, &u); err != nil {
			return store.Version{}, &ValidationError{Problems: []config.FieldError{{Path: entityPath(op.Kind, op.Name), Msg: err.Error()}}}
		}
	}
	var problems []config.FieldError
	if c.valid && !next.misnamed {
		problems = validateChange(next, c.base, ch.Ops)
	} else {
		problems = validate(next, c.base)
	}
	if len(problems) > 0 {
		return store.Version{}, &ValidationError{Problems: problems}
	}
	if c.check != nil {
		cfg := next.configure(c.base)
		cfg.ApplyDefaults()
		if err := c.check(cfg); err != nil {
			return store.Version{}, &ValidationError{Problems: []config.FieldError{{Msg: err.Error()}}}
		}
	}
	v, err := c.store.Apply(ctx, ch)
	if err != nil {
		return store.Version{}, err
	}
	if v.N == 0 {
		// Nothing changed in the store: the entities are taken back to
		// exactly what they were.
		next.rollback(u)
		return v, nil
	}
	if v.N != c.version+1 {
		// Another control plane wrote in between (a shared PostgreSQL):
		// reload from the store rather than trust the local view.
		if err := c.reload(ctx); err != nil {
			return store.Version{}, err
		}
	} else {
		c.version, c.valid = v.N, true
	}
	c.notify()
	return v, nil
}

// Refresh picks up versions written by other control planes sharing the
// store, announcing them when there are any.
func (c *Controller) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.version
	if err := c.refresh(ctx); err != nil {
		return err
	}
	if c.version != before {
		c.notify()
	}
	return nil
}

func (c *Controller) refresh(ctx context.Context) error {
	ops, latest, err := c.store.Since(ctx, c.version)
	if err != nil {
		return err
	}
	if latest == c.version {
		return nil
	}
	var u undo
	for _, op := range ops {
		if err := c.current.applyUndoable(op, &u); err != nil {
			c.current.rollback(u)
			return fmt.Errorf("stored entity: %w", err)
		}
	}
	// Versions written elsewhere were validated there, maybe by other
	// rules: the next change here validates everything.
	c.version, c.valid = latest, false
	return nil
}

func (c *Controller) reload(ctx context.Context) error {
	c.current, c.version, c.valid = newEntitySet(), 0, false
	return c.refresh(ctx)
}

// Subscribe returns a channel that receives a signal after every change
// (signals coalesce: read Config to see where things are) and a function
// that ends the subscription.
func (c *Controller) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

func (c *Controller) notify() {
	c.gen++
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

var entityIndex = regexp.MustCompile(`^(services|routes|consumers|plans)\[(\d+)\]`)

// nameIndexes rewrites "routes[3].service" as "routes[users-api].service".
func nameIndexes(path string, cfg *config.Config) string {
	m := entityIndex.FindStringSubmatch(path)
	if m == nil {
		return path
	}
	i, _ := strconv.Atoi(m[2])
	var name string
	switch m[1] {
	case "services":
		name = cfg.Services[i].Name
	case "routes":
		name = cfg.Routes[i].Name
	case "consumers":
		name = cfg.Consumers[i].Name
	case "plans":
		name = cfg.Plans[i].Name
	}
	return m[1] + "[" + name + "]" + path[len(m[0]):]
}

func entityPath(kind store.Kind, name string) string { return string(kind) + "[" + name + "]" }

type named interface {
	config.Service | config.Route | config.Consumer | config.Plan | Key
}

func sortedValues[V named](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
