package config

import (
	"os"
	"testing"
)

func BenchmarkParseContractExample(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	env := envMap(map[string]string{"TOLLGATE_ADMIN_TOKEN": "t", "ALICE_KEY": "k"})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parse("full.yaml", data, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	c, err := parse("full.yaml", data, envMap(map[string]string{"TOLLGATE_ADMIN_TOKEN": "t", "ALICE_KEY": "k"}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if errs := c.Validate(); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}
