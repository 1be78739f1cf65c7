package admin

import (
	"fmt"
	"net/http"
	"strings"
)

// Purging response caches.
//
// The caches live in the data plane; the admin API reaches them through
// Options.Purge, which `tollgate run` (both planes in one process) wires to
// the process's caches. Caches kept in Redis are shared: a purge removes
// their entries from Redis and tells every gateway using that Redis to drop
// its memory copies. A control plane running alone has no cache of its own
// (Purge nil): it answers 501.

// cacheRoutes adds the purge endpoints to mux.
func (a *API) cacheRoutes(mux *http.ServeMux) {
	mux.Handle("DELETE /api/cache", a.write(a.purgeCache))
	mux.Handle("DELETE /api/cache/{route}", a.write(a.purgeCache))
}

// purgeResult is the answer to a purge.
type purgeResult struct {
	// Purged is the number of stored responses removed.
	Purged int `json:"purged"`
}

// purgeCache empties every cache, a route's (DELETE /api/cache/{route}),
// or one resource of a route (?key=/path?query, or ?key=//host/path?query
// for one host only).
func (a *API) purgeCache(w http.ResponseWriter, r *http.Request, _ caller) {
	route, key := r.PathValue("route"), r.URL.Query().Get("key")
	if a.opts.Purge == nil {
		writeError(w, http.StatusNotImplemented, "no_cache",
			"this process serves no cache (a control plane alone): purge through a gateway's admin API, or rely on Redis-backed caches' ttl", nil)
		return
	}
	if key != "" {
		if route == "" {
			writeError(w, http.StatusBadRequest, "invalid", "a key purges one route's entries: DELETE /api/cache/{route}?key=...", nil)
			return
		}
		if !strings.HasPrefix(key, "/") || strings.HasPrefix(key, "///") || key == "//" {
			writeError(w, http.StatusBadRequest, "invalid",
				fmt.Sprintf("key %q must be a request target, /path?query, or //host/path?query for one host", key), nil)
			return
		}
	}
	if route != "" && !a.routeExists(route) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route named %q", route), nil)
		return
	}
	n, err := a.opts.Purge(route, key)
	if err != nil {
		a.opts.Logger.Error("cache purge failed", "route", route, "key", key, "purged", n, "error", err)
		writeError(w, http.StatusBadGateway, "purge_failed",
			fmt.Sprintf("purged %d stored responses, then: %v", n, err), nil)
		return
	}
	writeJSON(w, http.StatusOK, purgeResult{Purged: n})
}

// routeExists reports whether the configuration in force has the route.
func (a *API) routeExists(name string) bool {
	cfg, _ := a.opts.Controller.Config()
	if cfg == nil {
		return false
	}
	for _, rt := range cfg.Routes {
		if rt.Name == name {
			return true
		}
	}
	return false
}
