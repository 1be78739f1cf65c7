package policy

import "testing"

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, " application/problem+json ": true,
		"application/vnd.api+json;v=2": true, "text/json": false, "application/jsonx": false,
		"application/": false, "application/+json": false, "": false, "application/xml": false,
	} {
		if got := IsJSON([]byte(ct)); got != want {
			t.Errorf("IsJSON(%q) = %v", ct, got)
		}
	}
	for enc, want := range map[string]bool{"": true, "identity": true, " Identity ": true, "gzip": false, "br": false} {
		if got := IdentityEncoded([]byte(enc)); got != want {
			t.Errorf("IdentityEncoded(%q) = %v", enc, got)
		}
	}
}
