package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/openapi"
)

func TestLoadErrors(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	t.Cleanup(srv.Close)
	for _, c := range []struct{ location, want string }{
		{"", `no OpenAPI document named`},
		{"testdata/nope.yaml", `cannot read "testdata/nope.yaml": no such file or directory`},
		{"testdata", `cannot read "testdata": is a directory`},
		{"testdata/broken.yaml", `"testdata/broken.yaml" is not a valid OpenAPI document: `},
		{"testdata/swagger2.yaml", `"testdata/swagger2.yaml": OpenAPI 2 (Swagger) documents are not supported; convert it to OpenAPI 3 first`},
		{"testdata/swagger2.json", `"testdata/swagger2.json": OpenAPI 2 (Swagger) documents are not supported`},
		{"testdata/invalid.yaml", `"testdata/invalid.yaml" is not a valid OpenAPI document: `},
		{"testdata/badexample.yaml", `"testdata/badexample.yaml" is not a valid OpenAPI document: invalid paths: invalid path /pets: invalid operation GET: `},
		{srv.URL + "/nope.yaml", `cannot read "` + srv.URL + `/nope.yaml": GET ` + srv.URL + `/nope.yaml: 404 Not Found`},
	} {
		_, err := openapi.Load(c.location)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v\nwant an error starting %q", c.location, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Load(%q): the error spans lines: %q", c.location, err)
		}
	}
}

// A JSON document over HTTP, whose schema is in another document beside
// it: references are followed relative to the document.
func TestLoadURLWithReferences(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	t.Cleanup(srv.Close)
	for _, location := range []string{srv.URL + "/api.json", "testdata/api.json"} {
		s, err := openapi.Load(location)
		if err != nil {
			t.Fatalf("%s: %v", location, err)
		}
		op, err := s.Operation("getPet")
		if err != nil {
			t.Fatal(err)
		}
		_, _, body, err := op.MockResponse(200)
		if err != nil || string(body) != `{"id":3,"name":"Rex"}` {
			t.Errorf("%s: example %s %v: the referenced schema was not followed", location, body, err)
		}
	}
}

// A file's document is loaded once, and again when it or a document it
// refers to changes.
func TestLoadKeepsUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	api, schemas := filepath.Join(dir, "api.json"), filepath.Join(dir, "schemas.json")
	copyFile(t, "testdata/api.json", api)
	copyFile(t, "testdata/schemas.json", schemas)
	first := load(t, api)
	if again := load(t, api); again != first {
		t.Error("an unchanged document was loaded again")
	}
	if err := os.WriteFile(schemas, []byte(`{"Pet": {"type": "object", "properties": {"id": {"type": "integer", "example": 42}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := load(t, api)
	if changed == first {
		t.Fatal("a change of a referenced document was not seen")
	}
	op, _ := changed.Operation("getPet")
	if _, _, body, _ := op.MockResponse(200); string(body) != `{"id":42}` {
		t.Errorf("example after the change: %s", body)
	}
	if err := os.Remove(api); err != nil {
		t.Fatal(err)
	}
	if _, err := openapi.Load(api); err == nil {
		t.Error("a removed document still loads")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOperationLookup(t *testing.T) {
	s := load(t, petstore)
	for ref, want := range map[string]string{
		"listPets":                   "GET /pets",
		"GET /pets":                  "GET /pets",
		"post /pets":                 "POST /pets",
		"DELETE /pets/{petId}":       "DELETE /pets/{petId}",
		"  delete   /pets/{petId}  ": "DELETE /pets/{petId}",
	} {
		op, err := s.Operation(ref)
		if err != nil {
			t.Errorf("%q: %v", ref, err)
			continue
		}
		if got := op.Method + " " + op.Path; got != want {
			t.Errorf("%q found %s, want %s", ref, got, want)
		}
	}
	_, err := s.Operation("showPet")
	if err == nil || err.Error() != `no operation "showPet" in "testdata/petstore.yaml" (operations: listPets, createPet, showPetById, DELETE /pets/{petId}, GET /owners/{owner-id}/pets/{petId}.json)` {
		t.Errorf("unknown operation: %v", err)
	}
}
