package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestTokensAndRoles(t *testing.T) {
	s := startAPI(t)
	var e apiError
	resp := s.do("GET", "/api/routes", "", "", "", &e)
	if resp.StatusCode != 401 || e.Error.Code != "unauthorized" || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %+v", resp.StatusCode, e)
	}
	if resp := s.do("GET", "/api/routes", "nope", "", "", &e); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp := s.do("GET", "/api/routes", "viewer-secret", "", "", nil); resp.StatusCode != 200 {
		t.Errorf("viewer read: %d", resp.StatusCode)
	}
	body := `{"name": "bob"}`
	if resp := s.do("POST", "/api/consumers", "viewer-secret", "", body, &e); resp.StatusCode != 403 || e.Error.Code != "forbidden" {
		t.Errorf("viewer write: %d %+v", resp.StatusCode, e)
	}
	if code := s.admin("POST", "/api/consumers", body, nil); code != 201 {
		t.Errorf("admin write: %d", code)
	}
}

func TestOpenWithoutTokensOnlyOnLoopback(t *testing.T) {
	a := New(Options{})
	a.SetTokens(nil, "127.0.0.1:8001")
	if !a.open.Load() {
		t.Error("no tokens on loopback: want open")
	}
	for _, listen := range []string{":8001", "0.0.0.0:8001", "10.1.2.3:8001"} {
		a.SetTokens(nil, listen)
		if a.open.Load() {
			t.Errorf("no tokens on %s: want closed", listen)
		}
	}
}

func TestEntityCRUD(t *testing.T) {
	s := startAPI(t)
	for _, tc := range []struct {
		kind, name, create, patch, check string
	}{
		{"routes", "orders", `{"name":"orders","paths":["/orders"],"service":"users"}`, `{"methods":["GET"]}`, `"methods":["GET"]`},
		{"services", "billing", `{"name":"billing","targets":[{"url":"http://127.0.0.1:9002"}]}`, `{"balancing":"random"}`, `"balancing":"random"`},
		{"consumers", "carol", `{"name":"carol","groups":["a"]}`, `{"groups":["b"]}`, `"groups":["b"]`},
		{"plans", "pro", `{"name":"pro","quota":{"requests":1000,"period":"month"}}`, `{"rate_limit":{"limit":5,"window":"1s"}}`, `"rate_limit":{"limit":5,"window":"1s"}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			base := "/api/" + tc.kind
			resp := s.do("POST", base, "admin-secret", "", tc.create, nil)
			if resp.StatusCode != 201 || resp.Header.Get("Location") != base+"/"+tc.name {
				t.Fatalf("create: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			var e apiError
			if code := s.admin("POST", base, tc.create, &e); code != 409 || e.Error.Code != "already_exists" {
				t.Errorf("create twice: %d %+v", code, e)
			}
			var list struct{ Data []map[string]any }
			s.admin("GET", base, "", &list)
			found := false
			for _, item := range list.Data {
				found = found || item["name"] == tc.name
			}
			if !found {
				t.Errorf("list lacks %s: %v", tc.name, list.Data)
			}
			if code := s.admin("PATCH", base+"/"+tc.name, tc.patch, nil); code != 200 {
				t.Fatalf("patch: %d", code)
			}
			var got json.RawMessage
			s.admin("GET", base+"/"+tc.name, "", &got)
			if compact := compactJSON(got); !strings.Contains(compact, tc.check) {
				t.Errorf("after patch: %s lacks %s", compact, tc.check)
			}
			if code := s.admin("PUT", base+"/"+tc.name, tc.create, nil); code != 200 {
				t.Errorf("replace: %d", code)
			}
			if code := s.admin("DELETE", base+"/"+tc.name, "", nil); code != 204 {
				t.Errorf("delete: %d", code)
			}
			if code := s.admin("GET", base+"/"+tc.name, "", &e); code != 404 || e.Error.Code != "not_found" {
				t.Errorf("after delete: %d %+v", code, e)
			}
			// PUT creates too.
			if code := s.admin("PUT", base+"/"+tc.name, tc.create, nil); code != 201 {
				t.Errorf("put to create: %d", code)
			}
		})
	}
}

func compactJSON(b []byte) string {
	var v any
	json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	return string(out)
}

func TestValidationErrorsNameTheField(t *testing.T) {
	s := startAPI(t)
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"unknown service", "POST", "/api/routes", `{"name":"x","paths":["/x"],"service":"nope"}`, "routes[x].service"},
		{"unknown field", "POST", "/api/routes", `{"name":"x","pathz":["/x"]}`, `"pathz"`},
		{"wrong type", "POST", "/api/services", `{"name":"s","targets":"http://x"}`, "targets"},
		{"bad regex", "PUT", "/api/routes/y", `{"paths":["~^(/x"],"service":"users"}`, "routes[y].paths[0]"},
		{"service in use", "DELETE", "/api/services/billing", "", "routes[uses-billing].service"},
		{"name mismatch", "PUT", "/api/consumers/a", `{"name":"b"}`, "differs"},
		{"no name", "POST", "/api/plans", `{}`, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "service in use" {
				s.admin("POST", "/api/services", `{"name":"billing","targets":[{"url":"http://127.0.0.1:1"}]}`, nil)
				s.admin("POST", "/api/routes", `{"name":"uses-billing","paths":["/b"],"service":"billing"}`, nil)
			}
			var e apiError
			code := s.admin(tc.method, tc.path, tc.body, &e)
			if code != 400 || len(e.Error.Fields) == 0 {
				t.Fatalf("%d %+v, want 400 with fields", code, e)
			}
			all := ""
			for _, f := range e.Error.Fields {
				all += f.Path + " " + f.Message + "; "
			}
			if !strings.Contains(all, tc.field) {
				t.Errorf("fields %q do not name %q", all, tc.field)
			}
		})
	}
}

func TestFileOwnedEntitiesAreManagedByTheFile(t *testing.T) {
	s := startAPI(t)
	var e apiError
	for _, m := range []struct{ method, body string }{
		{"PUT", `{"paths":["/u"],"service":"users"}`}, {"PATCH", `{"paths":["/u"]}`}, {"DELETE", ""},
	} {
		if code := s.admin(m.method, "/api/routes/users-api", m.body, &e); code != 409 || e.Error.Code != "managed_by_file" {
			t.Errorf("%s of a file route: %d %+v", m.method, code, e)
		}
	}
	resp := s.do("GET", "/api/routes/users-api", "admin-secret", "", "", nil)
	if resp.Header.Get("X-Tollgate-Source") != "file" {
		t.Errorf("source header %q", resp.Header.Get("X-Tollgate-Source"))
	}
}

func TestConsumerKeys(t *testing.T) {
	s := startAPI(t)
	var created struct {
		ID, Key, Prefix, Consumer string
	}
	if code := s.admin("POST", "/api/consumers/alice/keys", "", &created); code != 201 {
		t.Fatalf("create key: %d", code)
	}
	if !strings.HasPrefix(created.Key, "tg_") || len(created.Key) < 40 || !strings.HasPrefix(created.Key, created.Prefix) || created.Consumer != "alice" {
		t.Errorf("created %+v", created)
	}
	var list struct{ Data []map[string]any }
	s.admin("GET", "/api/consumers/alice/keys", "", &list)
	if len(list.Data) != 1 || list.Data[0]["id"] != created.ID || list.Data[0]["key"] != nil || list.Data[0]["sha256"] != nil {
		t.Errorf("listed keys %v: the key and its hash must not be shown", list.Data)
	}
	cfg, _ := s.ctrl.Config()
	if creds := cfg.Consumers[0].Credentials.KeyAuth; len(creds) != 1 || creds[0].SHA256 == "" || creds[0].Key != "" {
		t.Errorf("alice's credentials in the configuration: %+v", creds)
	}
	if code := s.admin("POST", "/api/consumers/nobody/keys", "", nil); code != 404 {
		t.Errorf("key for an unknown consumer: %d", code)
	}
	if code := s.admin("DELETE", "/api/consumers/alice/keys/"+created.ID, "", nil); code != 204 {
		t.Errorf("revoke: %d", code)
	}
	if code := s.admin("DELETE", "/api/consumers/alice/keys/"+created.ID, "", nil); code != 404 {
		t.Errorf("revoke twice: %d", code)
	}
	// A consumer's keys go with it.
	s.admin("POST", "/api/consumers", `{"name":"dave"}`, nil)
	s.admin("POST", "/api/consumers/dave/keys", "", nil)
	if code := s.admin("DELETE", "/api/consumers/dave", "", nil); code != 204 {
		t.Fatalf("delete consumer with a key: %d", code)
	}
	cfg, _ = s.ctrl.Config()
	for _, c := range cfg.Consumers {
		if c.Name == "dave" {
			t.Error("dave still there")
		}
	}
}

func TestConfigExportImportVersionsAndRollback(t *testing.T) {
	s := startAPI(t)
	resp := s.do("GET", "/api/config", "viewer-secret", "", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", s.url+"/api/config", nil)
	req.Header.Set("Authorization", "Bearer admin-secret")
	req.Header.Set("Accept", "application/yaml")
	yresp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	yb := readAll(t, yresp)
	if yresp.Header.Get("Content-Type") != "application/yaml" || !strings.Contains(yb, "users-api") {
		t.Fatalf("YAML export: %s\n%s", yresp.Header.Get("Content-Type"), yb)
	}
	// The export, with one more route, imports back as one new version.
	next := yb + "" // the exported YAML is a complete set
	next = strings.Replace(next, "routes:\n", "routes:\n- name: extra\n  paths: [/extra]\n  service: users\n", 1)
	var applied struct {
		Version int64 `json:"version"`
		Changed bool  `json:"changed"`
	}
	if code := s.do("PUT", "/api/config", "admin-secret", "application/yaml", next, &applied).StatusCode; code != 200 || !applied.Changed || applied.Version != 2 {
		t.Fatalf("import: %d %+v\n%s", code, applied, next)
	}
	cfg, v := s.ctrl.Config()
	if v != 2 || len(cfg.Routes) != 2 {
		t.Fatalf("after import: v%d %d routes", v, len(cfg.Routes))
	}
	// The same body again changes nothing.
	s.do("PUT", "/api/config", "admin-secret", "application/yaml", next, &applied)
	if applied.Changed || applied.Version != 2 {
		t.Errorf("re-import: %+v", applied)
	}
	// A YAML error names line and column.
	var e apiError
	bad := "routes:\n  - name: r\n    paths: [/r]\n    servce: users\n"
	code := s.do("PUT", "/api/config", "admin-secret", "application/yaml", bad, &e).StatusCode
	found := false
	for _, f := range e.Error.Fields {
		found = found || f.Path == "routes[0].servce" && strings.Contains(f.Message, `body:4:5: unknown field "servce"; did you mean "service"?`)
	}
	if code != 400 || !found {
		t.Errorf("bad YAML: %d %+v", code, e)
	}
	// Versions are the audit log.
	var vs struct {
		Data []struct {
			Version int64
			Actor   string
			Action  string
			Ops     []struct{ Kind, Name string }
		}
	}
	s.admin("GET", "/api/config/versions", "", &vs)
	if len(vs.Data) != 2 || vs.Data[0].Actor != "ops" || vs.Data[0].Action != "PUT /api/config" || vs.Data[1].Actor != "file" {
		t.Fatalf("versions %+v", vs.Data)
	}
	if len(vs.Data[0].Ops) != 1 || vs.Data[0].Ops[0].Name != "extra" {
		t.Errorf("version 2 ops %+v", vs.Data[0].Ops)
	}
	var at struct{ Routes []config.Route }
	if code := s.admin("GET", "/api/config/versions/1", "", &at); code != 200 || len(at.Routes) != 1 {
		t.Errorf("version 1: %d %+v", code, at)
	}
	if code := s.admin("GET", "/api/config/versions/99", "", nil); code != 404 {
		t.Errorf("version 99: %d", code)
	}
	// Rolling back to 1 removes the imported route, as version 3.
	if code := s.admin("POST", "/api/config/versions/1/rollback", "", &applied); code != 200 || applied.Version != 3 {
		t.Fatalf("rollback: %d %+v", code, applied)
	}
	if cfg, _ := s.ctrl.Config(); len(cfg.Routes) != 1 {
		t.Errorf("after rollback: %d routes", len(cfg.Routes))
	}
	s.admin("GET", "/api/config/versions?limit=1", "", &vs)
	if len(vs.Data) != 1 || vs.Data[0].Action != "rollback to version 1" {
		t.Errorf("latest version %+v", vs.Data)
	}
	if code := s.admin("GET", "/api/config/versions?limit=0", "", nil); code != 400 {
		t.Errorf("limit=0: %d", code)
	}
}

func TestClusterNodesAndOpenAPIDocument(t *testing.T) {
	s := startAPI(t)
	var nodes struct{ Data []Node }
	if code := s.admin("GET", "/api/cluster/nodes", "", &nodes); code != 200 || len(nodes.Data) != 1 || nodes.Data[0].ID != "dp-1" {
		t.Errorf("nodes: %d %+v", code, nodes)
	}
	resp, err := http.Get(s.url + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi.json: %v", doc["openapi"])
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
