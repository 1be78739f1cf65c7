package engine

import (
	"bytes"
	"testing"
)

// FuzzSplitRequestURI feeds arbitrary request targets: splitting must never
// panic, and a path it returns must start with "/" and be part of the input
// (absolute-form targets aside, where "/" is added for an empty path).
func FuzzSplitRequestURI(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/a#f", "http://h/p?q", "http://h", "*", "", "//x", "http://h?q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, uri []byte) {
		path, query, ok := splitRequestURI(uri)
		if !ok {
			return
		}
		if len(path) == 0 || path[0] != '/' {
			t.Fatalf("%q: path %q does not start with /", uri, path)
		}
		if bytes.IndexByte(path, '?') >= 0 {
			t.Fatalf("%q: path %q keeps the query", uri, path)
		}
		if len(query) > 0 && !bytes.Contains(uri, query) {
			t.Fatalf("%q: query %q not from the input", uri, query)
		}
	})
}
