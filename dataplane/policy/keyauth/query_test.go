package keyauth

import (
	"slices"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestWithoutParam(t *testing.T) {
	for _, tc := range []struct {
		query, want string
		removed     bool
	}{
		{"", "", false},
		{"apikey=k", "", true},
		{"a=1&apikey=k&b=2", "a=1&b=2", true},
		{"apikey=k&apikey=j&c", "c", true},
		{"apikey", "", true},
		{"apikey=", "", true},
		{"api%6Bey=k&api%6bey=j&x=1", "x=1", true},
		{"a=1&&apikey=k&", "a=1", true},
		{"xapikey=1&apikeyx=2&apikey%=3&api+key=4", "xapikey=1&apikeyx=2&apikey%=3&api+key=4", false},
		{"a=apikey&b=%61pikey", "a=apikey&b=%61pikey", false},
		{"%", "%", false},
		{"apikey%2", "apikey%2", false},
	} {
		got, removed := withoutParam(nil, []byte(tc.query), "apikey")
		if string(got) != tc.want || removed != tc.removed {
			t.Errorf("%q: %q %v, want %q %v", tc.query, got, removed, tc.want, tc.removed)
		}
	}
	// Names with spaces and escapes are decoded as the query is.
	if got, _ := withoutParam(nil, []byte("my+key=1&my%20key=2&other=3"), "my key"); string(got) != "other=3" {
		t.Errorf("decoded name: %q", got)
	}
}

// FuzzWithoutParam checks withoutParam against the query parser requests
// are read with: what it leaves has no parameter of that name, and every
// other parameter, in order.
func FuzzWithoutParam(f *testing.F) {
	for _, seed := range []string{"a=1&apikey=k&b=2", "api%6Bey=k", "apikey%2", "a+b=%zz&apikey&&=", "%"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		got, _ := withoutParam(nil, []byte(query), "apikey")
		var before, after fasthttp.Args
		before.Parse(query)
		after.ParseBytes(got)
		if after.Has("apikey") {
			t.Fatalf("%q -> %q still has the key", query, got)
		}
		var want []string
		for k, v := range before.All() {
			if string(k) != "apikey" {
				want = append(want, string(k)+"="+string(v))
			}
		}
		var have []string
		for k, v := range after.All() {
			have = append(have, string(k)+"="+string(v))
		}
		if !slices.Equal(want, have) {
			t.Fatalf("%q -> %q: parameters %q, want %q", query, got, have, want)
		}
	})
}
