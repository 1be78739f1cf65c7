package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane/store"
)

// entityKind describes one collection of the API.
type entityKind struct {
	kind     store.Kind
	singular string
	// decode reads one entity strictly and returns its name and its
	// canonical JSON (what is stored and answered).
	decode func(body []byte, name string) (string, []byte, error)
}

var entityKinds = []entityKind{
	{store.Services, "service", decodeAs(func(v *config.Service) *string { return &v.Name }, func(v *config.Service) {
		c := config.Config{Services: []config.Service{*v}}
		c.ApplyDefaults()
		*v = c.Services[0]
	})},
	{store.Routes, "route", decodeAs(func(v *config.Route) *string { return &v.Name }, func(v *config.Route) {
		c := config.Config{Routes: []config.Route{*v}}
		c.ApplyDefaults()
		*v = c.Routes[0]
	})},
	{store.Consumers, "consumer", decodeAs(func(v *config.Consumer) *string { return &v.Name }, nil)},
	{store.Plans, "plan", decodeAs(func(v *config.Plan) *string { return &v.Name }, nil)},
}

// maxBody bounds an admin request body (a whole configuration may be big).
const maxBody = 64 << 20

// decodeAs returns a decoder for entities of type T. A name given by the
// path fills an empty name in the body and must match a non-empty one.
// Defaults are applied as the file's loader applies them, so an entity
// reads the same whether the file or the API made it.
func decodeAs[T any](nameOf func(*T) *string, defaults func(*T)) func([]byte, string) (string, []byte, error) {
	return func(body []byte, pathName string) (string, []byte, error) {
		var v T
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&v); err != nil {
			return "", nil, jsonProblem(err)
		}
		if d.More() {
			return "", nil, errors.New("unexpected data after the JSON document")
		}
		name := nameOf(&v)
		switch {
		case pathName != "" && *name == "":
			*name = pathName
		case pathName != "" && *name != pathName:
			return "", nil, fmt.Errorf("name %q in the body differs from %q in the path", *name, pathName)
		case *name == "":
			return "", nil, errors.New("name: required")
		}
		if defaults != nil {
			defaults(&v)
		}
		out, err := json.Marshal(&v)
		return *name, out, err
	}
}

// jsonProblem turns a decoding error into a message naming the field.
func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: expected %s, got a JSON %s", te.Field, te.Type, te.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large", nil)
		return nil, false
	}
	return b, true
}

func badBody(w http.ResponseWriter, err error) {
	path, msg := "", err.Error()
	if p, m, ok := strings.Cut(msg, ": "); ok && !strings.Contains(p, " ") {
		path, msg = p, m
	}
	writeError(w, http.StatusBadRequest, "invalid", "invalid request body", []fieldProblem{{Path: path, Message: msg}})
}

func (a *API) list(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caller) {
		es, err := a.opts.Controller.Store().List(r.Context(), k.kind)
		if err != nil {
			a.writeChangeError(w, err)
			return
		}
		data := make([]json.RawMessage, len(es))
		for i, e := range es {
			data[i] = e.Body
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data})
	}
}

func (a *API) get(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caller) {
		e, err := a.opts.Controller.Store().Get(r.Context(), k.kind, r.PathValue("name"))
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s named %q", k.singular, r.PathValue("name")), nil)
			return
		}
		if err != nil {
			a.writeChangeError(w, err)
			return
		}
		w.Header().Set("X-Tollgate-Source", string(e.Source))
		writeJSON(w, http.StatusOK, e.Body)
	}
}

// put stores one entity after the checks every write shares: the file
// owns what it names.
func (a *API) put(w http.ResponseWriter, r *http.Request, c caller, k entityKind, name string, body []byte, status int) {
	if a.refuseFileOwned(w, k, name) {
		return
	}
	op := store.Op{Kind: k.kind, Name: name, Source: store.SourceAPI, Body: body}
	if _, err := a.change(r.Context(), store.Change{Actor: c.name, Action: r.Method + " " + r.URL.Path, Ops: []store.Op{op}}); err != nil {
		a.writeChangeError(w, err)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/api/"+string(k.kind)+"/"+name)
	}
	writeJSON(w, status, json.RawMessage(body))
}

func (a *API) refuseFileOwned(w http.ResponseWriter, k entityKind, name string) bool {
	if a.opts.Controller.Source(k.kind, name) != store.SourceFile {
		return false
	}
	writeError(w, http.StatusConflict, "managed_by_file",
		fmt.Sprintf("%s %q is defined in the configuration file; change it there", k.singular, name), nil)
	return true
}

func (a *API) create(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		raw, ok := readBody(w, r)
		if !ok {
			return
		}
		name, body, err := k.decode(raw, "")
		if err != nil {
			badBody(w, err)
			return
		}
		if a.opts.Controller.Source(k.kind, name) != "" {
			writeError(w, http.StatusConflict, "already_exists", fmt.Sprintf("a %s named %q already exists", k.singular, name), nil)
			return
		}
		a.put(w, r, c, k, name, body, http.StatusCreated)
	}
}

func (a *API) replace(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		raw, ok := readBody(w, r)
		if !ok {
			return
		}
		name, body, err := k.decode(raw, r.PathValue("name"))
		if err != nil {
			badBody(w, err)
			return
		}
		status := http.StatusOK
		if a.opts.Controller.Source(k.kind, name) == "" {
			status = http.StatusCreated
		}
		a.put(w, r, c, k, name, body, status)
	}
}

func (a *API) patch(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		name := r.PathValue("name")
		cur, err := a.opts.Controller.Store().Get(r.Context(), k.kind, name)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s named %q", k.singular, name), nil)
			return
		}
		if err != nil {
			a.writeChangeError(w, err)
			return
		}
		raw, ok := readBody(w, r)
		if !ok {
			return
		}
		merged, err := mergePatch(cur.Body, raw)
		if err != nil {
			badBody(w, err)
			return
		}
		_, body, err := k.decode(merged, name)
		if err != nil {
			badBody(w, err)
			return
		}
		a.put(w, r, c, k, name, body, http.StatusOK)
	}
}

func (a *API) remove(k entityKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		name := r.PathValue("name")
		switch a.opts.Controller.Source(k.kind, name) {
		case "":
			writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s named %q", k.singular, name), nil)
			return
		case store.SourceFile:
			a.refuseFileOwned(w, k, name)
			return
		}
		ops := []store.Op{{Kind: k.kind, Name: name, Delete: true}}
		if k.kind == store.Consumers {
			keys, err := a.keysOf(r, name)
			if err != nil {
				a.writeChangeError(w, err)
				return
			}
			for _, key := range keys {
				ops = append(ops, store.Op{Kind: store.Keys, Name: key.ID, Delete: true})
			}
		}
		if _, err := a.change(r.Context(), store.Change{Actor: c.name, Action: r.Method + " " + r.URL.Path, Ops: ops}); err != nil {
			a.writeChangeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// mergePatch applies an RFC 7386 JSON merge patch to doc.
func mergePatch(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, jsonProblem(err)
	}
	return json.Marshal(mergeValue(d, p))
}

func mergeValue(doc, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	dm, ok := doc.(map[string]any)
	if !ok {
		dm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(dm, k)
			continue
		}
		dm[k] = mergeValue(dm[k], v)
	}
	return dm
}
