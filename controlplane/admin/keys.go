package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store"
)

// keyPrefix marks Tollgate keys, so that secret scanners can spot leaked
// ones.
const keyPrefix = "tg_"

// newKey makes a random key (256 bits) and its record.
func newKey(consumer string, now time.Time) (key string, rec controlplane.Key) {
	secret := make([]byte, 32)
	rand.Read(secret)
	key = keyPrefix + base64.RawURLEncoding.EncodeToString(secret)
	id := make([]byte, 8)
	rand.Read(id)
	sum := sha256.Sum256([]byte(key))
	return key, controlplane.Key{
		ID:        hex.EncodeToString(id),
		Consumer:  consumer,
		SHA256:    hex.EncodeToString(sum[:]),
		Prefix:    key[:len(keyPrefix)+6],
		CreatedAt: now.UTC().Format(time.RFC3339),
	}
}

// keysOf returns the API keys of a consumer.
func (a *API) keysOf(r *http.Request, consumer string) ([]controlplane.Key, error) {
	es, err := a.opts.Controller.Store().List(r.Context(), store.Keys)
	if err != nil {
		return nil, err
	}
	var out []controlplane.Key
	for _, e := range es {
		var k controlplane.Key
		if err := json.Unmarshal(e.Body, &k); err != nil {
			return nil, err
		}
		if k.Consumer == consumer {
			out = append(out, k)
		}
	}
	return out, nil
}

// keyView is a key as listed: never the key itself, nor its hash.
type keyView struct {
	ID        string `json:"id"`
	Consumer  string `json:"consumer"`
	Prefix    string `json:"prefix"`
	CreatedAt string `json:"created_at"`
	// Key is set only in the answer that creates it.
	Key string `json:"key,omitempty"`
}

func viewOf(k controlplane.Key) keyView {
	return keyView{ID: k.ID, Consumer: k.Consumer, Prefix: k.Prefix, CreatedAt: k.CreatedAt}
}

func (a *API) consumerExists(w http.ResponseWriter, name string) bool {
	if a.opts.Controller.Source(store.Consumers, name) == "" {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no consumer named %q", name), nil)
		return false
	}
	return true
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, _ caller) {
	name := r.PathValue("name")
	if !a.consumerExists(w, name) {
		return
	}
	keys, err := a.keysOf(r, name)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	data := make([]keyView, len(keys))
	for i, k := range keys {
		data[i] = viewOf(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, c caller) {
	name := r.PathValue("name")
	if !a.consumerExists(w, name) {
		return
	}
	key, rec := newKey(name, a.opts.Now())
	body, _ := json.Marshal(rec)
	op := store.Op{Kind: store.Keys, Name: rec.ID, Source: store.SourceAPI, Body: body}
	if _, err := a.change(r.Context(), store.Change{Actor: c.name, Action: "POST " + r.URL.Path, Ops: []store.Op{op}}); err != nil {
		a.writeChangeError(w, err)
		return
	}
	v := viewOf(rec)
	v.Key = key
	w.Header().Set("Location", r.URL.Path+"/"+rec.ID)
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) deleteKey(w http.ResponseWriter, r *http.Request, c caller) {
	name, id := r.PathValue("name"), r.PathValue("id")
	keys, err := a.keysOf(r, name)
	if err != nil {
		a.writeChangeError(w, err)
		return
	}
	for _, k := range keys {
		if k.ID != id {
			continue
		}
		op := store.Op{Kind: store.Keys, Name: id, Delete: true}
		if _, err := a.change(r.Context(), store.Change{Actor: c.name, Action: "DELETE " + r.URL.Path, Ops: []store.Op{op}}); err != nil {
			a.writeChangeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("consumer %q has no key %q", name, id), nil)
}
