package transform_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy/transform"
)

var fuzzSeeds = []string{
	`{}`, `[]`, `0`, `"s"`, `null`,
	`{"a": 1, "b": [true, false, null, -1.5e3, "x\"y\\u00e9"], "c": {"d": {}}}`,
	` [ {"a" : [ ] } , 1 , "" ] `,
	`{"a":1,"a":2,"\u0061":3}`,
	`{"\ud83d\ude00": "😀", "x\ud800": 1}`,
}

// A document written back without edits is the compact form of the input,
// byte for byte.
func FuzzDocumentRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, in); err != nil {
			t.Fatal(err)
		}
		if got := transform.RoundTrip(in); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("round trip of %q\n got %q\nwant %q", in, got, want.Bytes())
		}
	})
}

// Edits of any valid document give valid JSON, and what they remove is
// gone.
func FuzzDocumentEdits(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "/a", "/b/0", "/c/d/-")
	}
	f.Fuzz(func(t *testing.T, in []byte, p1, p2, p3 string) {
		if !json.Valid(in) {
			return
		}
		s := &transform.JSONSettings{
			Remove: []string{p1},
			Rename: map[string]string{p2: p3},
			Add:    map[string]any{p3 + "/x": []any{"v", 1.5, nil}, p1 + "~0": map[string]any{"k": true}},
		}
		out, errs := transform.EditJSON(in, s)
		if len(errs) > 0 {
			return // not pointers
		}
		if !json.Valid(out) {
			t.Fatalf("edits of %q gave invalid JSON %q", in, out)
		}
	})
}
