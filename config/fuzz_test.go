package config

import (
	"errors"
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(full),
		"",
		"a: &x [*x]\n",
		"services: [{<<: {name: a}, targets: [{url: 'http://h'}]}]\n",
		"policies: {cors: ~, rate-limit: {limit: \"${L:-1}\"}}\n",
		"routes:\n  - name: r\n    paths: [\"~(\", \"/{a}/{a}\"]\n",
		"server: {limits: {max_body_bytes: 1e999}}\n",
		"? [a]\n: b\n",
		"--- \n--- \n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			if errs := cfg.Validate(); len(errs) != 0 {
				t.Fatalf("accepted config fails Validate: %v", errs)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %v is not a non-empty Errors", err)
		}
		for i := 1; i < len(es); i++ {
			if es[i-1].Line > es[i].Line || es[i-1].Line == es[i].Line && es[i-1].Col > es[i].Col {
				t.Fatalf("problems out of order: %v", err)
			}
		}
	})
}
