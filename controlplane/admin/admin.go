// Package admin is the admin API: CRUD of services, routes, consumers and
// plans, consumer keys, configuration export and import, versions and
// rollback, the cluster's data planes, and the API's own OpenAPI document.
//
// Every write goes through the controlplane.Controller, so it is validated
// against the whole configuration it would make and recorded as a new
// version with the token's name as its author: the version list is the
// audit log. Entities the configuration file names are managed by the file
// and refused here (409 managed_by_file): edit the file instead.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
	"github.com/tollgate/tollgate/internal/jsonx"
)

// Roles a token may have.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// Node is a data plane as the cluster knows it.
type Node struct {
	ID            string    `json:"id"`
	Hostname      string    `json:"hostname,omitempty"`
	Address       string    `json:"address,omitempty"`
	ConfigVersion int64     `json:"config_version"`
	Status        string    `json:"status"` // connected | disconnected
	LastContact   time.Time `json:"last_contact"`
	Health        string    `json:"health,omitempty"`
}

// Options configure the API.
type Options struct {
	Controller *controlplane.Controller
	// Nodes lists the data planes (nil: none, as in a single process).
	Nodes func() []Node
	// Settle, when set, is called after every change the API made, before
	// it answers: the gateway of the same process serves the change by
	// then, so a client can use what it just created.
	Settle func()
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// Purge empties response caches (see cache.go): route "" for all of
	// them, key "" for a whole route. nil: this process serves no cache.
	Purge func(route, key string) (int, error)
}

// API serves the admin API.
type API struct {
	opts   Options
	tokens atomic.Pointer[[]token]
	// open is set when no token is configured and the listener is on
	// loopback: every request is treated as an admin's.
	open atomic.Bool
}

type token struct {
	name, role string
	sum        [32]byte
}

// New returns the API.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &API{opts: opts}
	a.tokens.Store(&[]token{})
	return a
}

// SetTokens replaces the accepted tokens (kept only as SHA-256). With none,
// the API is open when listen is a loopback address and closed otherwise.
func (a *API) SetTokens(ts []config.AdminToken, listen string) {
	out := make([]token, 0, len(ts))
	for _, t := range ts {
		out = append(out, token{name: t.Name, role: t.Role, sum: sha256.Sum256([]byte(t.Token))})
	}
	a.tokens.Store(&out)
	a.open.Store(len(out) == 0 && isLoopback(listen))
}

func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// caller is who makes a request.
type caller struct{ name, role string }

// authenticate finds the caller of r, or answers 401.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if a.open.Load() {
		return caller{name: "local", role: RoleAdmin}, true
	}
	auth := r.Header.Get("Authorization")
	scheme, presented, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || presented == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required", nil)
		return caller{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	var found *token
	for i, t := range *a.tokens.Load() {
		// Every token is compared, so timing tells nothing of which matched.
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = &(*a.tokens.Load())[i]
		}
	}
	if found == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "invalid token", nil)
		return caller{}, false
	}
	return caller{name: found.name, role: found.role}, true
}

// Handler returns the API's routes under /api/.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, k := range entityKinds {
		base := "/api/" + string(k.kind)
		mux.Handle("GET "+base, a.read(a.list(k)))
		mux.Handle("POST "+base, a.write(a.create(k)))
		mux.Handle("GET "+base+"/{name}", a.read(a.get(k)))
		mux.Handle("PUT "+base+"/{name}", a.write(a.replace(k)))
		mux.Handle("PATCH "+base+"/{name}", a.write(a.patch(k)))
		mux.Handle("DELETE "+base+"/{name}", a.write(a.remove(k)))
	}
	mux.Handle("GET /api/consumers/{name}/keys", a.read(a.listKeys))
	mux.Handle("POST /api/consumers/{name}/keys", a.write(a.createKey))
	mux.Handle("DELETE /api/consumers/{name}/keys/{id}", a.write(a.deleteKey))
	mux.Handle("GET /api/config", a.read(a.exportConfig))
	mux.Handle("PUT /api/config", a.write(a.importConfig))
	mux.Handle("GET /api/config/versions", a.read(a.listVersions))
	mux.Handle("GET /api/config/versions/{n}", a.read(a.getVersion))
	mux.Handle("POST /api/config/versions/{n}/rollback", a.write(a.rollback))
	mux.Handle("GET /api/cluster/nodes", a.read(a.listNodes))
	a.cacheRoutes(mux)
	mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such admin endpoint", nil)
	})
	return mux
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller)

// read lets any authenticated caller in.
func (a *API) read(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		h(w, r, c)
	})
}

// write lets only admins in: a viewer gets 403.
func (a *API) write(h handlerFunc) http.Handler {
	return a.read(func(w http.ResponseWriter, r *http.Request, c caller) {
		if c.role != RoleAdmin {
			writeError(w, http.StatusForbidden, "forbidden", "the "+c.role+" role may not change anything", nil)
			return
		}
		h(w, r, c)
	})
}

// fieldProblem is one invalid field of a request.
type fieldProblem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, fields []fieldProblem) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b := []byte(`{"error":{"status":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = jsonx.AppendString(b, code)
	b = append(b, `,"message":`...)
	b = jsonx.AppendString(b, msg)
	if len(fields) > 0 {
		fb, _ := json.Marshal(fields)
		b = append(b, `,"fields":`...)
		b = append(b, fb...)
	}
	b = append(b, "}}\n"...)
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// change applies a change through the controller, then lets the local
// gateway settle on it.
func (a *API) change(ctx context.Context, ch store.Change) (store.Version, error) {
	v, err := a.opts.Controller.Change(ctx, ch)
	if err == nil && v.N != 0 && a.opts.Settle != nil {
		a.opts.Settle()
	}
	return v, err
}

// writeChangeError answers a refused change: 400 with the fields for a
// validation error, 500 otherwise.
func (a *API) writeChangeError(w http.ResponseWriter, err error) {
	var ve *controlplane.ValidationError
	if errors.As(err, &ve) {
		fields := make([]fieldProblem, len(ve.Problems))
		for i, p := range ve.Problems {
			fields[i] = fieldProblem{Path: p.Path, Message: p.Msg}
		}
		writeError(w, http.StatusBadRequest, "invalid", "the change would make an invalid configuration", fields)
		return
	}
	a.opts.Logger.Error("admin API change failed", "error", err)
	writeError(w, http.StatusInternalServerError, "internal_error", "the change could not be stored", nil)
}
