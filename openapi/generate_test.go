package openapi_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	_ "github.com/tollgate/tollgate/dataplane/policy/requestvalidation"
	"github.com/tollgate/tollgate/openapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const petstore = "testdata/petstore.yaml"

func load(t testing.TB, location string) *openapi.Spec {
	t.Helper()
	s, err := openapi.Load(location)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func generate(t testing.TB, s *openapi.Spec, opts openapi.ImportOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := openapi.WriteRoutes(&b, s, opts); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("generated routes differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestImportGolden(t *testing.T) {
	got := generate(t, load(t, petstore), openapi.ImportOptions{Service: "pets"})
	golden(t, "petstore.routes.yaml", got)
}

// withService wraps generated routes into a configuration that defines
// their service.
func withService(service, routes string) string {
	return "services:\n  - name: " + service + "\n    targets: [{url: \"http://127.0.0.1:9\"}]\n" + routes
}

func TestImportLoadsAsConfiguration(t *testing.T) {
	for _, c := range []struct {
		name string
		opts openapi.ImportOptions
	}{
		{"plain", openapi.ImportOptions{Service: "pets"}},
		{"base path", openapi.ImportOptions{Service: "pets", BasePath: "/v1"}},
		{"quoted names", openapi.ImportOptions{Service: "pet-store.v2", Spec: "./" + petstore}},
	} {
		t.Run(c.name, func(t *testing.T) {
			routes := generate(t, load(t, petstore), c.opts)
			cfg, err := config.Parse("imported.yaml", []byte(withService(c.opts.Service, routes)))
			if err != nil {
				t.Fatalf("%v\n%s", err, routes)
			}
			if len(cfg.Routes) != 5 {
				t.Fatalf("%d routes, want 5", len(cfg.Routes))
			}
			for _, r := range cfg.Routes {
				if r.Service != c.opts.Service || len(r.Methods) != 1 || len(r.Paths) != 1 {
					t.Errorf("route %+v", r)
				}
				if c.opts.BasePath != "" && !strings.HasPrefix(r.Paths[0], "="+c.opts.BasePath+"/") && !strings.HasPrefix(r.Paths[0], "~^"+c.opts.BasePath+"/") {
					t.Errorf("route %s: path %s lacks the base path", r.Name, r.Paths[0])
				}
				rv, ok := r.Policies["request-validation"].(map[string]any)
				if !ok || rv["operation"] == "" || rv["spec"] == "" {
					t.Errorf("route %s: request-validation %v", r.Name, r.Policies)
				}
			}
		})
	}
}

func TestRouteNamesAreUnique(t *testing.T) {
	s := load(t, "testdata/names.yaml")
	seen := map[string]bool{}
	var names []string
	for _, r := range openapi.Routes(s, openapi.ImportOptions{Service: "s"}) {
		if r.Skipped != "" {
			names = append(names, "skipped:"+r.Method)
			continue
		}
		if seen[r.Name] {
			t.Errorf("name %s twice", r.Name)
		}
		seen[r.Name] = true
		names = append(names, r.Name+" "+r.Path)
	}
	want := []string{
		"get-items =/items",
		"get-items-2 =/items/{id}",
		"items.search =/items/search",
		"list-items-v2 =/v2/items",
		"get-a-b-c-1d =/a/{b_c}/{_1d}",
		"skipped:TRACE",
		"get =/",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	routes := generate(t, s, openapi.ImportOptions{Service: "s"})
	if _, err := config.Parse("names.yaml", []byte(withService("s", routes))); err != nil {
		t.Fatalf("%v\n%s", err, routes)
	}
}
