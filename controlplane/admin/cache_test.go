package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store/memory"
)

// purgeRecorder stands for the data plane's caches: it records each purge
// and answers with n and err.
type purgeRecorder struct {
	mu    sync.Mutex
	calls [][2]string
	n     int
	err   error
}

func (p *purgeRecorder) purge(route, key string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, [2]string{route, key})
	return p.n, p.err
}

func (p *purgeRecorder) last() [2]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return [2]string{"(none)", "(none)"}
	}
	return p.calls[len(p.calls)-1]
}

// startCacheAPI is startAPI with Options.Purge (nil: a process without
// caches).
func startCacheAPI(t *testing.T, purge func(route, key string) (int, error)) *apiServer {
	t.Helper()
	ctx := context.Background()
	file, err := config.Parse("tollgate.yaml", []byte(fileConfig))
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := controlplane.New(ctx, memory.New(), file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.ApplyFile(ctx, file); err != nil {
		t.Fatal(err)
	}
	api := New(Options{Controller: ctrl, Purge: purge})
	api.SetTokens([]config.AdminToken{{Name: "ops", Token: "admin-secret", Role: RoleAdmin}, {Name: "auditor", Token: "viewer-secret", Role: RoleViewer}}, "127.0.0.1:8001")
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &apiServer{t: t, url: srv.URL, ctrl: ctrl, client: &http.Client{Transport: conformance(t, http.DefaultTransport)}}
}

func TestCachePurge(t *testing.T) {
	rec := &purgeRecorder{n: 3}
	s := startCacheAPI(t, rec.purge)

	var out purgeResult
	if code := s.admin("DELETE", "/api/cache", "", &out); code != 200 || out.Purged != 3 || rec.last() != [2]string{"", ""} {
		t.Errorf("purge all: %d %+v, call %q", code, out, rec.last())
	}
	if code := s.admin("DELETE", "/api/cache/users-api", "", &out); code != 200 || rec.last() != [2]string{"users-api", ""} {
		t.Errorf("purge a route: %d, call %q", code, rec.last())
	}
	for _, key := range []string{"/users/1?fields=name", "//api.example.com/users/1"} {
		if code := s.admin("DELETE", "/api/cache/users-api?key="+url.QueryEscape(key), "", &out); code != 200 || rec.last() != [2]string{"users-api", key} {
			t.Errorf("purge key %s: %d, call %q", key, code, rec.last())
		}
	}
}

func TestCachePurgeRefusals(t *testing.T) {
	rec := &purgeRecorder{}
	s := startCacheAPI(t, rec.purge)
	var e apiError
	for _, tc := range []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"no token", "/api/cache", "", 401, "unauthorized"},
		{"viewer", "/api/cache", "viewer-secret", 403, "forbidden"},
		{"viewer, one route", "/api/cache/users-api", "viewer-secret", 403, "forbidden"},
		{"unknown route", "/api/cache/nope", "admin-secret", 404, "not_found"},
		{"key without a route", "/api/cache?key=/x", "admin-secret", 400, "invalid"},
		{"key not a path", "/api/cache/users-api?key=users", "admin-secret", 400, "invalid"},
		{"key without a host", "/api/cache/users-api?key=" + url.QueryEscape("///x"), "admin-secret", 400, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e = apiError{}
			if resp := s.do("DELETE", tc.path, tc.token, "", "", &e); resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Errorf("%d %+v, want %d %s", resp.StatusCode, e, tc.status, tc.code)
			}
		})
	}
	if len(rec.calls) != 0 {
		t.Errorf("refused requests purged: %q", rec.calls)
	}

	rec.n, rec.err = 2, errors.New("redis: connection refused")
	if code := s.admin("DELETE", "/api/cache/users-api", "", &e); code != 502 || e.Error.Code != "purge_failed" {
		t.Errorf("failed purge: %d %+v, want 502 purge_failed", code, e)
	}
}

func TestCachePurgeWithoutCaches(t *testing.T) {
	s := startCacheAPI(t, nil)
	var e apiError
	for _, path := range []string{"/api/cache", "/api/cache/users-api"} {
		if code := s.admin("DELETE", path, "", &e); code != 501 || e.Error.Code != "no_cache" {
			t.Errorf("%s: %d %+v, want 501 no_cache", path, code, e)
		}
	}
}
