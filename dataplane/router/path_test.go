package router

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        error // nil when the path is valid
	}{
		{"root", "/", "/", nil},
		{"canonical", "/users/5", "/users/5", nil},
		{"trailing slash kept", "/users/", "/users/", nil},
		{"duplicate slashes", "//a///b//", "/a/b/", nil},
		{"only slashes", "////", "/", nil},
		{"dot segment", "/a/./b", "/a/b", nil},
		{"trailing dot", "/a/.", "/a/", nil},
		{"dot dot", "/a/b/../c", "/a/c", nil},
		{"trailing dot dot", "/a/b/..", "/a/", nil},
		{"dot dot above root", "/../..", "/", nil},
		{"dot dot above root then path", "/a/../../../b", "/b", nil},
		{"encoded dots", "/a/%2e%2E/b", "/b", nil},
		{"encoded single dot", "/a/%2E/b", "/a/b", nil},
		{"mixed encoded dot", "/a/.%2e", "/", nil},
		{"three dots are a name", "/a/.../b", "/a/.../b", nil},
		{"dot prefix is a name", "/a/.git/..x", "/a/.git/..x", nil},
		{"unreserved letter", "/%41", "/A", nil},
		{"unreserved tilde", "/%7e", "/~", nil},
		{"unreserved set", "/%61%5A%30%2D%5F%2e%7E", "/aZ0-_.~", nil},
		{"reserved stays encoded", "/a%3Fb", "/a%3Fb", nil},
		{"lowercase hex uppercased", "/caf%c3%a9", "/caf%C3%A9", nil},
		{"mixed case hex", "/%3f%3F%aB", "/%3F%3F%AB", nil},
		{"percent not decoded twice", "/%252e", "/%252e", nil},
		{"double encoded dots stay", "/a/%252e%252e/b", "/a/%252e%252e/b", nil},
		{"encoded percent uppercased", "/%25", "/%25", nil},
		{"encoded space kept", "/a%20b", "/a%20b", nil},
		{"sub-delims kept", "/a;b=c,d!$&'()*+@:", "/a;b=c,d!$&'()*+@:", nil},

		{"empty", "", "", ErrInvalidPath},
		{"relative", "users", "", ErrInvalidPath},
		{"absolute URI", "http://x/", "", ErrInvalidPath},
		{"encoded slash", "/a%2Fb", "", errEncodedSlash},
		{"encoded slash lower", "/a%2fb", "", errEncodedSlash},
		{"encoded backslash", "/a%5cb", "", errEncodedSlash},
		{"backslash", `/a\b`, "", errBackslash},
		{"NUL", "/a\x00b", "", errNUL},
		{"encoded NUL", "/a%00", "", errNUL},
		{"control", "/a\x01", "", errControl},
		{"newline", "/a\nb", "", errControl},
		{"DEL", "/a\x7f", "", errControl},
		{"space", "/a b", "", errControl},
		{"byte 0x80", "/a\x80", "", errNonASCII},
		{"utf-8", "/café", "", errNonASCII},
		{"truncated escape", "/a%4", "", errBadEscape},
		{"lone percent", "/a%", "", errBadEscape},
		{"non-hex escape", "/a%zz", "", errBadEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath([]byte(tt.in))
			gotS, errS := NormalizePathString(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(errS, tt.wantErr) {
					t.Fatalf("NormalizePath(%q) error = %v / %v, want %v", tt.in, err, errS, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("error %v does not wrap ErrInvalidPath", err)
				}
				return
			}
			if err != nil || errS != nil {
				t.Fatalf("NormalizePath(%q) error = %v / %v", tt.in, err, errS)
			}
			if string(got) != tt.want || gotS != tt.want {
				t.Fatalf("NormalizePath(%q) = %q / %q, want %q", tt.in, got, gotS, tt.want)
			}
		})
	}
}

func TestNormalizePathReturnsCanonicalInputUnchanged(t *testing.T) {
	for _, in := range []string{"/", "/users/5", "/a/b/", "/caf%C3%A9", "/%252e"} {
		t.Run(in, func(t *testing.T) {
			b := []byte(in)
			got, err := NormalizePath(b)
			if err != nil {
				t.Fatal(err)
			}
			if &got[0] != &b[0] {
				t.Fatalf("canonical input %q was copied", in)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePathString(in) }); n != 0 {
				t.Fatalf("NormalizePathString(%q) allocates %v times", in, n)
			}
		})
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "//a/./b/../c/", "/%2e%2E/%41%7e", "/%252e", "/a%2Fb", `/a\b`, "/..", "/a/b/.%2E", "/\x80", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePathString(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v does not wrap ErrInvalidPath", err)
			}
			return
		}
		again, err := NormalizePathString(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if out == "" || out[0] != '/' {
			t.Fatalf("%q -> %q does not start with /", in, out)
		}
		for _, bad := range []string{"//", "/./", "/../"} {
			if strings.Contains(out, bad) {
				t.Fatalf("%q -> %q contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("%q -> %q ends in a dot segment", in, out)
		}
		b, err := NormalizePath([]byte(in))
		if err != nil || string(b) != out {
			t.Fatalf("byte and string forms differ: %q vs %q, %v", b, out, err)
		}
	})
}
