package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// entitiesDoc is the part of a configuration the API exports and imports.
type entitiesDoc struct {
	Services  []config.Service  `yaml:"services" json:"services"`
	Routes    []config.Route    `yaml:"routes" json:"routes"`
	Consumers []config.Consumer `yaml:"consumers" json:"consumers"`
	Plans     []config.Plan     `yaml:"plans" json:"plans"`
}

// docOf decodes a state's entities (keys stay out: they are exported by
// nobody, and live on across imports).
func docOf(st store.State) (entitiesDoc, error) {
	doc := entitiesDoc{Services: []config.Service{}, Routes: []config.Route{}, Consumers: []config.Consumer{}, Plans: []config.Plan{}}
	for _, e := range st.Entities {
		var err error
		switch e.Kind {
		case store.Services:
			var v config.Service
			err = json.Unmarshal(e.Body, &v)
			doc.Services = append(doc.Services, v)
		case store.Routes:
			var v config.Route
			err = json.Unmarshal(e.Body, &v)
			doc.Routes = append(doc.Routes, v)
		case store.Consumers:
			var v config.Consumer
			err = json.Unmarshal(e.Body, &v)
			doc.Consumers = append(doc.Consumers, v)
		case store.Plans:
			var v config.Plan
			err = json.Unmarshal(e.Body, &v)
			doc.Plans = append(doc.Plans, v)
		}
		if err != nil {
			return doc, fmt.Errorf("%s %q: %w", e.Kind, e.Name, err)
		}
	}
	return doc, nil
}

func wantsYAML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
			return true
		}
	}
	return false
}

func writeDoc(w http.ResponseWriter, r *http.Request, doc entitiesDoc, version int64) {
	w.Header().Set("X-Tollgate-Config-Version", strconv.FormatInt(version, 10))
	if wantsYAML(r) {
		// Through JSON, whose tags leave out empty fields.
		j, err := json.Marshal(doc)
		var b []byte
		if err == nil {
			b, err = yaml.JSONToYAML(j)
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal_error", err.Error(), nil)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

func (a *API) exportConfig(w http.ResponseWriter, r *http.Request, _ caller) {
	st, err := a.opts.Controller.Store().Current(r.Context())
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	doc, err := docOf(st)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	writeDoc(w, r, doc, st.Version)
}

// importConfig replaces every entity with those of the body, a complete
// set as GET /api/config gives it (YAML or JSON). Entities the file owns
// must come unchanged (they are the file's to change) and stay when left
// out; API keys stay while their consumer does.
func (a *API) importConfig(w http.ResponseWriter, r *http.Request, c caller) {
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	doc, problems := parseDoc(r.Header.Get("Content-Type"), raw)
	if problems != nil {
		writeError(w, http.StatusBadRequest, "invalid", "invalid configuration", problems)
		return
	}
	a.replaceAll(w, r, c, doc, "PUT /api/config")
}

// parseDoc reads a complete entity set, YAML (checked as a configuration
// file is, with line and column) or JSON (strictly).
func parseDoc(contentType string, raw []byte) (entitiesDoc, []fieldProblem) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if strings.Contains(mt, "yaml") {
		var top map[string]any
		if err := yaml.Unmarshal(raw, &top); err != nil {
			return entitiesDoc{}, []fieldProblem{{Message: err.Error()}}
		}
		for k := range top {
			if !slices.Contains([]string{"services", "routes", "consumers", "plans"}, k) {
				return entitiesDoc{}, []fieldProblem{{Path: k, Message: "only services, routes, consumers and plans can be replaced through the API"}}
			}
		}
		cfg, err := config.Parse("body", raw)
		if err != nil {
			var es config.Errors
			if !errors.As(err, &es) {
				return entitiesDoc{}, []fieldProblem{{Message: err.Error()}}
			}
			out := make([]fieldProblem, len(es))
			for i, e := range es {
				out[i] = fieldProblem{Path: e.Path, Message: e.Error()}
			}
			return entitiesDoc{}, out
		}
		return entitiesDoc{Services: cfg.Services, Routes: cfg.Routes, Consumers: cfg.Consumers, Plans: cfg.Plans}, nil
	}
	var doc entitiesDoc
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&doc); err != nil {
		return doc, []fieldProblem{{Message: jsonProblem(err).Error()}}
	}
	return doc, nil
}

// replaceAll makes the API-owned entities those of doc, in one version.
func (a *API) replaceAll(w http.ResponseWriter, r *http.Request, c caller, doc entitiesDoc, action string) {
	ctrl := a.opts.Controller
	st, err := ctrl.Store().Current(r.Context())
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	current := map[store.Kind]map[string]store.Entity{}
	for _, e := range st.Entities {
		if current[e.Kind] == nil {
			current[e.Kind] = map[string]store.Entity{}
		}
		current[e.Kind][e.Name] = e
	}
	var ops []store.Op
	var conflicts []fieldProblem
	named := map[store.Kind]map[string]bool{}
	add := func(kind store.Kind, name string, v any) {
		body, _ := json.Marshal(v)
		if named[kind] == nil {
			named[kind] = map[string]bool{}
		}
		named[kind][name] = true
		if cur, ok := current[kind][name]; ok && cur.Source == store.SourceFile {
			if !bytes.Equal(cur.Body, body) {
				conflicts = append(conflicts, fieldProblem{Path: string(kind) + "[" + name + "]", Message: "defined in the configuration file; change it there"})
			}
			return
		}
		ops = append(ops, store.Op{Kind: kind, Name: name, Source: store.SourceAPI, Body: body})
	}
	for _, v := range doc.Plans {
		add(store.Plans, v.Name, v)
	}
	for _, v := range doc.Services {
		add(store.Services, v.Name, v)
	}
	for _, v := range doc.Routes {
		add(store.Routes, v.Name, v)
	}
	for _, v := range doc.Consumers {
		add(store.Consumers, v.Name, v)
	}
	if len(conflicts) > 0 {
		writeError(w, http.StatusConflict, "managed_by_file", "the body changes entities the configuration file defines", conflicts)
		return
	}
	for _, kind := range []store.Kind{store.Routes, store.Services, store.Consumers, store.Plans} {
		for name, e := range current[kind] {
			if e.Source == store.SourceAPI && !named[kind][name] {
				ops = append(ops, store.Op{Kind: kind, Name: name, Delete: true})
			}
		}
	}
	// Keys go with their consumer: they stay while it does (the file's
	// consumers always do).
	consumerStays := func(name string) bool {
		e, ok := current[store.Consumers][name]
		return named[store.Consumers][name] || ok && e.Source == store.SourceFile
	}
	for id, e := range current[store.Keys] {
		var k struct {
			Consumer string `json:"consumer"`
		}
		if err := json.Unmarshal(e.Body, &k); err != nil || !consumerStays(k.Consumer) {
			ops = append(ops, store.Op{Kind: store.Keys, Name: id, Delete: true})
		}
	}
	v, err := a.change(r.Context(), store.Change{Actor: c.name, Action: action, Ops: ops})
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	_, now := ctrl.Config()
	writeJSON(w, http.StatusOK, map[string]any{"version": now, "changed": v.N != 0})
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, _ caller) {
	q := r.URL.Query()
	limit, before := 50, int64(0)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid", "limit must be between 1 and 1000", []fieldProblem{{Path: "limit", Message: "between 1 and 1000"}})
			return
		}
		limit = n
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid", "before must be a version number", []fieldProblem{{Path: "before", Message: "a version number"}})
			return
		}
		before = n
	}
	vs, err := a.opts.Controller.Store().Versions(r.Context(), before, limit)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	if vs == nil {
		vs = []store.Version{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": vs})
}

// versionAt reads the state of version {n}, answering 404 when there is
// none.
func (a *API) versionAt(w http.ResponseWriter, r *http.Request) (store.State, bool) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 1 {
		writeError(w, http.StatusNotFound, "not_found", "no such version", nil)
		return store.State{}, false
	}
	st, err := a.opts.Controller.Store().At(r.Context(), n)
	if errors.Is(err, store.ErrNoVersion) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no version %d", n), nil)
		return st, false
	}
	if err != nil {
		a.writeChangeError(w, err)
		return st, false
	}
	return st, true
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request, _ caller) {
	st, ok := a.versionAt(w, r)
	if !ok {
		return
	}
	doc, err := docOf(st)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	writeDoc(w, r, doc, st.Version)
}

// rollback brings back the entities of version {n} as a new version.
// Entities the file owns now stay as the file says.
func (a *API) rollback(w http.ResponseWriter, r *http.Request, c caller) {
	st, ok := a.versionAt(w, r)
	if !ok {
		return
	}
	doc, err := docOf(st)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	ctrl := a.opts.Controller
	keep := func(kind store.Kind, name string) bool { return ctrl.Source(kind, name) != store.SourceFile }
	doc.Services = slices.DeleteFunc(doc.Services, func(v config.Service) bool { return !keep(store.Services, v.Name) })
	doc.Routes = slices.DeleteFunc(doc.Routes, func(v config.Route) bool { return !keep(store.Routes, v.Name) })
	doc.Consumers = slices.DeleteFunc(doc.Consumers, func(v config.Consumer) bool { return !keep(store.Consumers, v.Name) })
	doc.Plans = slices.DeleteFunc(doc.Plans, func(v config.Plan) bool { return !keep(store.Plans, v.Name) })
	a.replaceAll(w, r, c, doc, fmt.Sprintf("rollback to version %d", st.Version))
}

func (a *API) listNodes(w http.ResponseWriter, r *http.Request, _ caller) {
	nodes := []Node{}
	if a.opts.Nodes != nil {
		nodes = a.opts.Nodes()
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": nodes})
}
