package jwtauth_test

import (
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tollgate/tollgate/config"
)

// FuzzJWTParse feeds arbitrary Authorization values through the policy:
// token extraction, splitting, base64, header and claims walking, key
// choice and signature check must refuse or accept, never panic, and only
// accept with a consumer.
func FuzzJWTParse(f *testing.F) {
	rs := newSigner(f, "", jwa.RS256())
	chain := compileJWT(f, map[string]any{
		"token_cache_size":  0,
		"claims_to_headers": map[string]any{"sub": "X-Sub", "roles": "X-Roles", "org": "X-Org"},
	}, []config.Consumer{{Name: "alice", Credentials: config.Credentials{JWT: []config.JWTCredential{
		{Issuer: "https://hs.test", Secret: aliceSecret},
		{Issuer: "https://rs.test", PublicKey: rs.publicPEM(f)},
	}}}})
	hs := hmacSigner("", aliceSecret, jwa.HS256())
	full := map[string]any{"sub": "u\n1", "roles": []any{"a", 1, true, nil, []any{"x"}, map[string]any{"k": "v"}},
		"org": map[string]any{"id": 7}, "aud": []any{"x", 2}}
	for _, seed := range []string{
		"Bearer " + hs.sign(f, claims("https://hs.test", full)),
		"Bearer " + hs.sign(f, claims("https://hs.test", map[string]any{"exp": "soon"})),
		"Bearer " + rs.sign(f, claims("https://rs.test", full)),
		"Bearer " + hs.signRaw(f, []byte(`{"iss":"https://hs.test","sub":"a\u0000b","exp":1e400}`)),
		"Bearer " + hs.signRaw(f, []byte(`{"iss":"https://hs.test","iss":"x"}`)),
		"Bearer " + hs.signRaw(f, []byte(`["iss"]`)),
		"Bearer " + rawToken(f, map[string]any{"alg": "none"}, claims("https://hs.test", nil), nil),
		"Bearer " + rawToken(f, map[string]any{"alg": "HS256", "crit": []any{"b64"}, "b64": false}, claims("", nil), []byte("s")),
		"Bearer a.b.c", "Bearer ..", "bearer    x", "Bearer", "Basic YWxpY2U6eA==", "", "Bearer e30.e30.e30",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, authorization []byte) {
		var e exchange
		c, r := e.run(chain, authorization)
		switch {
		case r == nil && c == nil:
			t.Fatal("accepted without a consumer")
		case r != nil && r.Status != 401:
			t.Fatalf("refused with status %d", r.Status)
		}
	})
}
