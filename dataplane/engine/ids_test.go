package engine

import (
	"regexp"
	"testing"
)

func TestGeneratedIDs(t *testing.T) {
	tests := []struct {
		name string
		gen  func([]byte) []byte
		want *regexp.Regexp
	}{
		{"request id is a version 4 UUID", appendUUID,
			regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{"traceparent is version 00, sampled", appendTraceparent,
			regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				id := string(tt.gen(nil))
				if !tt.want.MatchString(id) {
					t.Fatalf("%q does not match %s", id, tt.want)
				}
				if seen[id] {
					t.Fatalf("%q generated twice", id)
				}
				seen[id] = true
			}
		})
	}
	for range 1000 {
		if tp := appendTraceparent(nil); !validTraceparent(tp) {
			t.Fatalf("generated traceparent %q is not valid", tp)
		}
	}
}

func BenchmarkGeneratedIDs(b *testing.B) {
	var buf [64]byte
	b.ReportAllocs()
	for b.Loop() {
		appendUUID(buf[:0])
		appendTraceparent(buf[:0])
	}
}
