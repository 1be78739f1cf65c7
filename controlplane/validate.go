package controlplane

import (
	"fmt"
	"slices"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// validate checks the configuration a set of entities makes, naming
// entities in paths by name rather than by their index in the assembled
// configuration.
func validate(s *entitySet, base *config.Config) []config.FieldError {
	return check(s, s.configure(base), true)
}

// validateChange returns what validate would, for a set that passed
// validate with the same base before ops were applied to it, by validating
// only what ops can have changed: base's own settings, every service and
// plan (entities reference them by name), and of routes and consumers the
// ones ops put. All routes are validated when a service changed, and all
// consumers when a plan or an API key changed or when a consumer ops put
// has credentials that must be unique among all consumers. Problems come
// in the same order and with the same text as validate's: the other
// entities had none, and their checks have not changed.
//
// It relies on every entity's name being the one it is stored under
// (entitySet.misnamed says when that is not so).
func validateChange(s *entitySet, base *config.Config, ops []store.Op) []config.FieldError {
	touched := map[store.Kind][]string{}
	for _, op := range ops {
		touched[op.Kind] = append(touched[op.Kind], op.Name)
	}
	cfg := *base
	cfg.Services = sortedValues(s.services)
	cfg.Plans = sortedValues(s.plans)
	if len(touched[store.Services]) > 0 {
		cfg.Routes = sortedValues(s.routes)
	} else {
		cfg.Routes = present(s.routes, touched[store.Routes])
	}
	allConsumers := len(touched[store.Plans]) > 0 || len(touched[store.Keys]) > 0
	if !allConsumers {
		cfg.Consumers = present(s.consumers, touched[store.Consumers])
		for i := range cfg.Consumers {
			c := &cfg.Consumers[i]
			if len(c.Credentials.MTLS) > 0 || len(c.Credentials.KeyAuth) > 0 || s.hasKeys(c.Name) {
				allConsumers = true // unique among all consumers
				break
			}
		}
	}
	if allConsumers {
		cfg.Consumers = s.consumersWithKeys()
	}
	keys := len(touched[store.Keys]) > 0 || len(touched[store.Consumers]) > 0
	return check(s, &cfg, keys)
}

// check validates cfg, made of s's entities, and when keys is set that
// every API key of s belongs to a consumer of s.
func check(s *entitySet, cfg *config.Config, keys bool) []config.FieldError {
	cfg.ApplyDefaults()
	problems := cfg.Validate()
	for i := range problems {
		problems[i].Path = nameIndexes(problems[i].Path, cfg)
	}
	if !keys {
		return problems
	}
	var orphans []string
	for name, k := range s.keys {
		if _, ok := s.consumers[k.Consumer]; !ok {
			orphans = append(orphans, name)
		}
	}
	slices.Sort(orphans)
	for _, name := range orphans {
		k := s.keys[name]
		problems = append(problems, config.FieldError{Path: entityPath(store.Keys, k.ID) + ".consumer",
			Msg: fmt.Sprintf("unknown consumer %q", k.Consumer)})
	}
	return problems
}

// present returns the entities of m named in names, sorted by name, each
// once; names not in m (deleted) are left out.
func present[V named](m map[string]V, names []string) []V {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]V, 0, len(names))
	for _, n := range names {
		if v, ok := m[n]; ok {
			out = append(out, v)
		}
	}
	return out
}

// hasKeys reports whether an API key belongs to the consumer.
func (s *entitySet) hasKeys(consumer string) bool {
	for _, k := range s.keys {
		if k.Consumer == consumer {
			return true
		}
	}
	return false
}
