package cache

import (
	"errors"
	"strings"
	"sync"

	"github.com/tollgate/tollgate/dataplane/policy/cache/store"
	"github.com/tollgate/tollgate/dataplane/router"
)

// The process's caches, for purges: the admin API runs in the control
// plane, the caches in the data plane, and in `tollgate run` both are this
// process. Every route cache registers itself while its policy state lives.
var caches struct {
	sync.Mutex
	set map[*routeCache]struct{}
}

func register(c *routeCache) {
	caches.Lock()
	defer caches.Unlock()
	if caches.set == nil {
		caches.set = map[*routeCache]struct{}{}
	}
	caches.set[c] = struct{}{}
}

func unregister(c *routeCache) {
	caches.Lock()
	defer caches.Unlock()
	delete(caches.set, c)
}

// PurgeAll empties every cache of the process, and, for caches kept in
// Redis, every entry under their key prefix (those other gateways stored
// too, which also drop their memory copies). It returns how many entries
// went.
func PurgeAll() (int, error) { return purge(store.Scope{}) }

// PurgeRoute empties the caches of one route.
func PurgeRoute(route string) (int, error) { return purge(store.Scope{Route: route}) }

// ErrMethod refuses a purge of a method whose responses are never cached.
var ErrMethod = errors.New("only GET and HEAD responses are cached (HEAD from GET's entries)")

// Purge removes one resource of a route: the stored responses of method
// (GET or HEAD, which share entries; "" for those), host ("" for any) and
// path, with its query when it has one ("/users?page=2"; the query as
// clients send it). Every variant goes (Vary, consumers).
func Purge(route, method, host, path string) (int, error) {
	switch method {
	case "", "GET", "HEAD":
	default:
		return 0, ErrMethod
	}
	p, query, hasQuery := strings.Cut(path, "?")
	norm, err := router.NormalizePath([]byte(p))
	if err != nil {
		return 0, nil // the gateway refuses such paths: none was ever stored
	}
	target := string(norm)
	if hasQuery {
		target += "?" + query
	}
	return purge(store.Scope{Route: route, Host: host, Target: target})
}

// AdminPurge is Purge in the shape the admin API calls: route "" purges
// everything, key "" the whole route; otherwise key is a request target,
// "/path?query", or "//host/path?query" for one host only.
func AdminPurge(route, key string) (int, error) {
	switch {
	case route == "":
		return PurgeAll()
	case key == "":
		return PurgeRoute(route)
	}
	host := ""
	if rest, ok := strings.CutPrefix(key, "//"); ok {
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			host, key = rest, "/"
		} else {
			host, key = rest[:i], rest[i:]
		}
		if host == "" {
			return 0, errors.New("the key names no host after //")
		}
	}
	if strings.HasPrefix(key, "?") {
		key = "/" + key
	}
	if !strings.HasPrefix(key, "/") {
		return 0, errors.New("the key must be a path (/path?query) or //host/path?query")
	}
	return Purge(route, "", host, key)
}

// purge applies a purge to the process's caches in scope: each one's
// memory, and each distinct Redis store and prefix once.
func purge(scope store.Scope) (int, error) {
	caches.Lock()
	list := make([]*routeCache, 0, len(caches.set))
	for c := range caches.set {
		if scope.Route == "" || c.route == scope.Route {
			list = append(list, c)
		}
	}
	caches.Unlock()

	type shared struct {
		r      *store.Redis
		prefix string
	}
	done := map[shared]bool{}
	purged := 0
	var errs []error
	for _, c := range list {
		n := c.mem.Purge(scope)
		if c.redis == nil {
			purged += n
			continue
		}
		// A Redis-backed cache's memory holds copies: Redis counts.
		k := shared{c.redis, c.prefix}
		if done[k] {
			continue
		}
		done[k] = true
		n, err := c.redis.Purge(c.prefix, scope)
		purged += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return purged, errors.Join(errs...)
}
