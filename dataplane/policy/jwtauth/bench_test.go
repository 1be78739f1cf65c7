package jwtauth_test

import (
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tollgate/tollgate/config"
)

// BenchmarkJWTVerify measures the policy's cost for one request carrying a
// valid token, signature checked every time (uncached) or once (cached).
func BenchmarkJWTVerify(b *testing.B) {
	rs := newSigner(b, "", jwa.RS256())
	es := newSigner(b, "", jwa.ES256())
	consumers := []config.Consumer{
		{Name: "alice", Credentials: config.Credentials{JWT: []config.JWTCredential{
			{Issuer: "https://hs.test", Secret: aliceSecret, Algorithm: "HS256"},
			{Issuer: "https://rs.test", PublicKey: rs.publicPEM(b), Algorithm: "RS256"},
			{Issuer: "https://es.test", PublicKey: es.publicPEM(b), Algorithm: "ES256"},
		}}},
	}
	tokens := []struct {
		alg   string
		token string
	}{
		{"HS256", hmacSigner("", aliceSecret, jwa.HS256()).sign(b, claims("https://hs.test", map[string]any{"sub": "u-1"}))},
		{"RS256", rs.sign(b, claims("https://rs.test", map[string]any{"sub": "u-1"}))},
		{"ES256", es.sign(b, claims("https://es.test", map[string]any{"sub": "u-1"}))},
	}
	for _, cache := range []struct {
		name string
		size int
	}{{"uncached", 0}, {"cached", 4096}} {
		chain := compileJWT(b, map[string]any{
			"claims_to_headers": map[string]any{"sub": "X-User-Id"},
			"token_cache_size":  cache.size,
		}, consumers)
		for _, tk := range tokens {
			b.Run(tk.alg+"/"+cache.name, func(b *testing.B) {
				var e exchange
				auth := []byte("Bearer " + tk.token)
				if c, r := e.run(chain, auth); c == nil || r != nil {
					b.Fatalf("token refused: %v", r)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, r := e.run(chain, auth); r != nil {
						b.Fatal(r)
					}
				}
			})
		}
	}
}
