package requestvalidation_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func parse(t *testing.T, policy string) error {
	t.Helper()
	_, err := config.Parse("t.yaml", []byte(`services:
  - name: s
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: s
    policies:
      request-validation:
`+policy))
	return err
}

func TestSettingsErrorsHaveTheirPosition(t *testing.T) {
	for _, c := range []struct {
		name, settings string
		want           []string
	}{
		{"unknown operation", "        spec: testdata/store.yaml\n        operation: lstPets\n",
			[]string{`t.yaml:11:9: no operation "lstPets" in "testdata/store.yaml" (operations: listPets, createPet, showPetById, updatePet, getFile)`}},
		{"unknown method and path", "        spec: testdata/store.yaml\n        operation: DELETE /pets\n",
			[]string{`t.yaml:11:9: no operation "DELETE /pets"`}},
		{"missing spec file", "        spec: testdata/nope.yaml\n",
			[]string{`t.yaml:10:9: cannot read "testdata/nope.yaml": no such file or directory`}},
		{"spec is not OpenAPI", "        spec: testdata/not-openapi.yaml\n",
			[]string{`t.yaml:10:9: "testdata/not-openapi.yaml" is not an OpenAPI 3 document (it has no "openapi: 3.x" field)`}},
		{"no spec", "        operation: listPets\n",
			[]string{`t.yaml:9:7: spec is required`}},
		{"bounds", "        spec: testdata/store.yaml\n        max_body_bytes: -1\n        base_path: v1/\n",
			[]string{`t.yaml:11:9: must not be negative`, `t.yaml:12:9: "v1/" must start with "/"`}},
		{"too large", "        spec: testdata/store.yaml\n        max_body_bytes: 100000000\n",
			[]string{`t.yaml:11:9: must be at most 67108864`}},
		{"unknown key", "        spec: testdata/store.yaml\n        bdy: false\n",
			[]string{`t.yaml:11:9: unknown field "bdy"`, `did you mean "body"?`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := parse(t, c.settings)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestSettingsAccepted(t *testing.T) {
	for _, s := range []string{
		"        spec: testdata/store.yaml\n",
		"        spec: testdata/store.yaml\n        operation: createPet\n        body: false\n        max_body_bytes: 4096\n",
		"        spec: testdata/store.yaml\n        operation: get /pets/{petId}\n        base_path: /v1\n",
		// A URL is fetched when the configuration is applied, not when it
		// is checked.
		"        spec: https://specs.example.com/store.yaml\n        operation: listPets\n",
	} {
		if err := parse(t, s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
