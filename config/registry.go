package config

import (
	"fmt"
	"slices"
	"sync"
)

// Policy packages register their names and settings checks here, so that the
// loader can refuse unknown policy names and locate settings errors without
// importing any policy.
var registry struct {
	sync.RWMutex
	checks map[string]func(settings any) []FieldError
}

// RegisterPolicy makes name a valid policy name. check, which may be nil,
// validates the policy's non-nil settings; the paths of its errors are
// relative to the policy, e.g. "limit". Registering a name twice panics, as
// two policies answering to one name is a programming error.
func RegisterPolicy(name string, check func(settings any) []FieldError) {
	registry.Lock()
	defer registry.Unlock()
	if registry.checks == nil {
		registry.checks = map[string]func(any) []FieldError{}
	}
	if _, dup := registry.checks[name]; dup {
		panic(fmt.Sprintf("config: policy %q registered twice", name))
	}
	registry.checks[name] = check
}

// PolicyNames returns the registered policy names, sorted.
func PolicyNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.checks))
	for name := range registry.checks {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func policyCheck(name string) (func(any) []FieldError, bool) {
	registry.RLock()
	defer registry.RUnlock()
	check, ok := registry.checks[name]
	return check, ok
}
