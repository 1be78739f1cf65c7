package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const petstoreSpec = "../../openapi/testdata/petstore.yaml"

func tollgate(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// The printed routes, under a configuration that defines their service,
// pass tollgate validate (run from the same directory, where the spec's
// relative path holds).
func TestImportOpenAPIOutputValidates(t *testing.T) {
	for _, args := range [][]string{
		{"import-openapi", petstoreSpec, "--service", "pets"},
		{"import-openapi", "-service=pets", "--base-path", "/v1", petstoreSpec},
	} {
		routes, stderr, code := tollgate(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		if !strings.Contains(routes, "request-validation: {spec: ../../openapi/testdata/petstore.yaml, ") {
			t.Errorf("%v: routes do not name the spec as given:\n%s", args, routes)
		}
		cfg := filepath.Join(t.TempDir(), "tollgate.yaml")
		data := "services:\n  - name: pets\n    targets: [{url: \"http://127.0.0.1:9\"}]\n" + routes
		if err := os.WriteFile(cfg, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, stderr, code := tollgate(t, "validate", "-c", cfg); code != 0 {
			t.Errorf("%v: validate: exit %d: %s%s\n%s", args, code, out, stderr, data)
		}
	}
}

func TestImportOpenAPIErrors(t *testing.T) {
	dir := t.TempDir()
	swagger := filepath.Join(dir, "swagger.yaml")
	os.WriteFile(swagger, []byte("swagger: \"2.0\"\ninfo: {title: Old, version: \"1\"}\npaths: {}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import-openapi", "nope.yaml", "--service", "pets"}, 1,
			"tollgate import-openapi: cannot read \"nope.yaml\": no such file or directory\n"},
		{[]string{"import-openapi", swagger, "--service", "pets"}, 1,
			"tollgate import-openapi: \"" + swagger + "\": OpenAPI 2 (Swagger) documents are not supported; convert it to OpenAPI 3 first\n"},
		{[]string{"import-openapi", petstoreSpec}, 2, "--service is required"},
		{[]string{"import-openapi", "--service", "pets"}, 2, "name one OpenAPI document"},
		{[]string{"import-openapi", petstoreSpec, "--service", "pets", "--base-path", "v1"}, 2, `--base-path "v1" must start with "/"`},
	} {
		stdout, stderr, code := tollgate(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, stdout, stderr, c.code, c.want)
		}
	}
}
