package policy

import (
	"io"
	"sync"
)

// State keeps policy state that must outlive a configuration reload: rate
// limit counters, bans, caches, connections to Redis. Entries are keyed by a
// string the policy chooses from what identifies its state (the route name
// and the settings that shape it), so that an unchanged policy finds its
// counters again in the next snapshot while a changed one starts afresh.
//
// Sweep, called by the engine once a new snapshot is in place, drops the
// entries that snapshot did not ask for, closing those that are io.Closers.
type State struct {
	mu      sync.Mutex
	entries map[string]*stateEntry
	gen     uint64
}

type stateEntry struct {
	value any
	gen   uint64
}

// NewState returns an empty state.
func NewState() *State { return &State{entries: map[string]*stateEntry{}} }

// Get returns the value kept under key, creating it with create when there
// is none.
func (s *State) Get(key string, create func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		e = &stateEntry{value: create()}
		s.entries[key] = e
	}
	e.gen = s.gen
	return e.value
}

// Begin starts the build of a snapshot: entries fetched from now on belong
// to it.
func (s *State) Begin() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// Sweep drops the entries not fetched since the last Begin.
func (s *State) Sweep() {
	s.mu.Lock()
	var stale []any
	for k, e := range s.entries {
		if e.gen != s.gen {
			stale = append(stale, e.value)
			delete(s.entries, k)
		}
	}
	s.mu.Unlock()
	for _, v := range stale {
		if c, ok := v.(io.Closer); ok {
			c.Close() //nolint:errcheck // nothing to do about a failed close of dropped state
		}
	}
}

// Close drops every entry.
func (s *State) Close() {
	s.Begin()
	s.Sweep()
}

// Shared holds values every route of one snapshot may share, such as a
// credential index built from all consumers.
type Shared struct {
	mu     sync.Mutex
	values map[string]sharedValue
}

type sharedValue struct {
	v   any
	err error
}

// NewShared returns an empty Shared for one snapshot.
func NewShared() *Shared { return &Shared{values: map[string]sharedValue{}} }

// Get returns the value built under key, building it once.
func (s *Shared) Get(key string, build func() (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.values[key]; ok {
		return v.v, v.err
	}
	v, err := build()
	s.values[key] = sharedValue{v, err}
	return v, err
}
