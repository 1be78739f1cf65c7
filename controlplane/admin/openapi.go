package admin

import (
	_ "embed"
	"net/http"

	"github.com/goccy/go-yaml"
)

// openAPIYAML is the admin API's OpenAPI document, kept by hand beside the
// handlers; a test checks the live API against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is the document served at /api/openapi.json.
var openAPIJSON = func() []byte {
	b, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil {
		panic("admin: openapi.yaml: " + err.Error())
	}
	return b
}()

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIJSON)
}
