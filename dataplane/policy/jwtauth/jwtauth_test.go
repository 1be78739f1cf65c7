package jwtauth_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

const aliceSecret = "alice-shared-secret-0123456789abcdef"

func TestHS256ConsumerSecret(t *testing.T) {
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, `routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt:
        claims_to_headers: {sub: X-User-Id, roles: X-Roles, level: X-Level, admin: X-Admin, org: X-Org}
consumers:
  - name: alice
    groups: [staff]
    credentials:
      jwt: [{issuer: "https://alice.example", secret: "`+aliceSecret+`", algorithm: HS256}]
`), nil)
	alice := hmacSigner("", aliceSecret, jwa.HS256())
	tok := alice.sign(t, claims("https://alice.example", map[string]any{
		"sub": "u-42", "roles": []any{"reader", "writer"}, "level": 3, "admin": true,
		"org": map[string]any{"id": 7},
	}))

	for i := range 2 { // the second answer comes from the verified-token cache
		up := mustAccept(t, call(t, g.URL+"/api", tok))
		for h, want := range map[string]string{
			"X-Consumer-Name": "alice", "X-Consumer-Groups": "staff", "X-User-Id": "u-42",
			"X-Roles": "reader, writer", "X-Level": "3", "X-Admin": "true", "X-Org": `{"id":7}`,
		} {
			if got := up.Get(h); got != want {
				t.Errorf("request %d: upstream %s = %q, want %q", i, h, got, want)
			}
		}
	}

	t.Run("client claim headers are stripped", func(t *testing.T) {
		noSub := alice.sign(t, claims("https://alice.example", nil))
		up := mustAccept(t, call(t, g.URL+"/api", noSub, func(r *http.Request) {
			r.Header.Set("X-User-Id", "root")
			r.Header.Set("X-Consumer-Name", "mallory")
		}))
		if got := up.Get("X-User-Id"); got != "" {
			t.Fatalf("client-sent X-User-Id reached upstream: %q", got)
		}
		if got := up.Get("X-Consumer-Name"); got != "alice" {
			t.Fatalf("X-Consumer-Name = %q", got)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		forged := hmacSigner("", "not-alice-secret", jwa.HS256()).sign(t, claims("https://alice.example", nil))
		mustRefuse(t, call(t, g.URL+"/api", forged), "bad signature")
	})
	t.Run("no token", func(t *testing.T) {
		a := call(t, g.URL+"/api", "")
		if a.status != http.StatusUnauthorized || a.errCode != "unauthorized" {
			t.Fatalf("status %d code %q, want 401 unauthorized", a.status, a.errCode)
		}
	})
	t.Run("other scheme is not a token", func(t *testing.T) {
		a := call(t, g.URL+"/api", "", func(r *http.Request) { r.SetBasicAuth("alice", "x") })
		if a.status != http.StatusUnauthorized || a.errCode != "unauthorized" {
			t.Fatalf("status %d code %q, want 401 unauthorized", a.status, a.errCode)
		}
	})
}

func TestJWKSAlgorithms(t *testing.T) {
	signers := []*signer{
		newSigner(t, "rsa-1", jwa.RS256()),
		newSigner(t, "pss-1", jwa.PS256()),
		newSigner(t, "ec-1", jwa.ES256()),
		newSigner(t, "ed-1", jwa.EdDSA()),
	}
	p := newIdP(t, signers...)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id, issuers: ["https://idp.test"], claims_to_headers: {sub: X-User-Id}}
consumers:
  - name: billing-service
`, p.url())), nil)
	for _, s := range signers {
		t.Run(s.alg.String(), func(t *testing.T) {
			tok := s.sign(t, claims("https://idp.test", map[string]any{"client_id": "billing-service", "sub": s.kid}))
			up := mustAccept(t, call(t, g.URL+"/api", tok))
			if got := up.Get("X-Consumer-Name"); got != "billing-service" {
				t.Fatalf("X-Consumer-Name = %q", got)
			}
			if got := up.Get("X-User-Id"); got != s.kid {
				t.Fatalf("X-User-Id = %q", got)
			}
		})
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches for known keys, want 1", n)
	}
}

func TestJWKSKeyRotation(t *testing.T) {
	old := newSigner(t, "2026-01", jwa.RS256())
	next := newSigner(t, "2026-02", jwa.ES256())
	p := newIdP(t, old)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id, jwks_min_refetch_interval: 50ms}
consumers:
  - name: app
`, p.url())), nil)
	mustAccept(t, call(t, g.URL+"/api", old.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))))

	rotated := next.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))
	mustRefuse(t, call(t, g.URL+"/api", rotated), "unknown signing key")

	p.publish(t, next)
	testutil.Eventually(t, 5*time.Second, "token signed with the new key accepted", func() bool {
		return call(t, g.URL+"/api", rotated).status == http.StatusOK
	})
}

func TestUnknownKidsDoNotHammerTheIdP(t *testing.T) {
	known := newSigner(t, "known", jwa.RS256())
	p := newIdP(t, known)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id, jwks_refresh: 2h, jwks_min_refetch_interval: 1h}
consumers:
  - name: app
`, p.url())), nil)
	mustAccept(t, call(t, g.URL+"/api", known.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))))

	attacker := newSigner(t, "", jwa.RS256())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				kid := make([]byte, 8)
				rand.Read(kid)
				s := &signer{kid: hex.EncodeToString(kid), alg: attacker.alg, priv: attacker.priv}
				tok := s.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))
				a := call(t, g.URL+"/api", tok)
				if a.status != http.StatusUnauthorized || !strings.Contains(a.errMsg, "unknown signing key") {
					t.Errorf("random kid: status %d %q", a.status, a.errMsg)
				}
			}
		})
	}
	wg.Wait()
	// The first fetch, and at most one refetch for the whole flood.
	if n := p.fetches.Load(); n > 2 {
		t.Fatalf("80 tokens with unknown kids caused %d JWKS fetches, want at most 2", n)
	}
}

func TestConcurrentRequestsShareOneFetch(t *testing.T) {
	s := newSigner(t, "k1", jwa.ES256())
	p := newIdP(t, s)
	release := p.hold(t)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id, jwks_refresh: 2h, jwks_min_refetch_interval: 1h}
consumers:
  - name: app
`, p.url())), nil)
	tok := s.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))
	var wg sync.WaitGroup
	answers := make([]answer, 20)
	for i := range answers {
		wg.Go(func() { answers[i] = call(t, g.URL+"/api", tok) })
	}
	testutil.Eventually(t, 5*time.Second, "the first fetch reaches the IdP", func() bool { return p.fetches.Load() >= 1 })
	release()
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("request %d: status %d %q", i, a.status, a.errMsg)
		}
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 shared by all requests", n)
	}
}

func TestRefusals(t *testing.T) {
	rs := newSigner(t, "rsa-1", jwa.RS256())
	pemKey := newSigner(t, "", jwa.RS256())
	p := newIdP(t, rs)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt:
        jwks_url: %q
        consumer_claim: client_id
        issuers: ["https://idp.test", "https://pem.test", "https://alice.example"]
        audiences: ["orders-api"]
consumers:
  - name: app
  - name: pem-app
    credentials:
      jwt:
        - issuer: "https://pem.test"
          algorithm: RS256
          public_key: |
%s
  - name: alice
    credentials:
      jwt: [{issuer: "https://alice.example", secret: %q}]
`, p.url(), indent(pemKey.publicPEM(t), 12), aliceSecret)), nil)
	now := time.Now().Unix()
	valid := func(extra map[string]any) map[string]any {
		base := map[string]any{"client_id": "app", "aud": []any{"other", "orders-api"}}
		for k, v := range extra {
			base[k] = v
		}
		return claims("https://idp.test", base)
	}
	mustAccept(t, call(t, g.URL+"/api", rs.sign(t, valid(nil))))
	mustAccept(t, call(t, g.URL+"/api", pemKey.sign(t, claims("https://pem.test",
		map[string]any{"client_id": "pem-app", "aud": "orders-api"}))))

	// An HMAC token whose secret is the RSA public key, as an attacker who
	// read the JWKS would make it.
	rsPEM := rs.publicPEM(t)
	confusedKid := hmacSigner("rsa-1", rsPEM, jwa.HS256())
	confusedIss := hmacSigner("", pemKey.publicPEM(t), jwa.HS256())

	tampered := strings.Split(rs.sign(t, valid(nil)), ".")
	tampered[1] = b64(mustJSON(t, valid(map[string]any{"client_id": "admin"})))

	cases := []struct {
		name, token, why string
	}{
		{"expired", rs.sign(t, valid(map[string]any{"exp": now - 300})), "expired"},
		{"not yet valid", rs.sign(t, valid(map[string]any{"nbf": now + 300})), "not valid yet"},
		{"issued in the future", rs.sign(t, valid(map[string]any{"iat": now + 300})), "issued in the future"},
		{"wrong issuer", rs.sign(t, valid(map[string]any{"iss": "https://evil.test"})), "wrong issuer"},
		{"wrong audience", rs.sign(t, valid(map[string]any{"aud": "billing-api"})), "wrong audience"},
		{"no audience", rs.sign(t, valid(map[string]any{"aud": nil})), "wrong audience"},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, valid(nil), nil), "malformed"},
		{"alg none with signature", rawToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, valid(nil), []byte("x")), "algorithm not allowed"},
		{"HS256 with the RSA public key by kid", confusedKid.sign(t, valid(nil)), "does not match its key"},
		{"HS256 with the PEM public key by issuer", confusedIss.sign(t, claims("https://pem.test",
			map[string]any{"client_id": "pem-app", "aud": "orders-api"})), "does not match its key"},
		{"tampered claims", strings.Join(tampered, "."), "bad signature"},
		{"unknown kid", newSigner(t, "rsa-2", jwa.RS256()).sign(t, valid(nil)), "unknown signing key"},
		{"critical header", rawToken(t, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []any{"exp"}, "exp": 1},
			valid(nil), []byte("sig")), "critical header"},
		{"not a JWT", "opaque-access-token", "malformed"},
		{"unknown consumer", rs.sign(t, valid(map[string]any{"client_id": "nobody"})), "no consumer"},
		{"consumer claim against another consumer's key", hmacSigner("", aliceSecret, jwa.HS256()).sign(t,
			claims("https://alice.example", map[string]any{"client_id": "app", "aud": "orders-api"})), "no consumer"},
		{"duplicate claim", rawDuplicate(t, rs), "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustRefuse(t, call(t, g.URL+"/api", c.token), c.why)
		})
	}
}

// rawDuplicate is a well signed token whose claims name client_id twice.
func rawDuplicate(t testing.TB, s *signer) string {
	t.Helper()
	return s.signRaw(t, []byte(`{"iss":"https://idp.test","aud":"orders-api","client_id":"nobody","client_id":"app"}`))
}

func TestLeeway(t *testing.T) {
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, `routes:
  - name: default
    paths: ["/default"]
    service: backend
    policies: {jwt: {}}
  - name: strict
    paths: ["/strict"]
    service: backend
    policies: {jwt: {leeway: 1s}}
consumers:
  - name: alice
    credentials:
      jwt: [{issuer: "https://alice.example", secret: "`+aliceSecret+`"}]
`), nil)
	alice := hmacSigner("", aliceSecret, jwa.HS256())
	now := time.Now().Unix()
	justExpired := alice.sign(t, claims("https://alice.example", map[string]any{"exp": now - 10}))
	longExpired := alice.sign(t, claims("https://alice.example", map[string]any{"exp": now - 60}))
	soonValid := alice.sign(t, claims("https://alice.example", map[string]any{"nbf": now + 10, "iat": now + 10}))

	mustAccept(t, call(t, g.URL+"/default", justExpired))
	mustAccept(t, call(t, g.URL+"/default", soonValid))
	mustRefuse(t, call(t, g.URL+"/default", longExpired), "expired")
	mustRefuse(t, call(t, g.URL+"/strict", justExpired), "expired")
	mustRefuse(t, call(t, g.URL+"/strict", soonValid), "not valid yet")
}

func TestCachedTokenStillExpires(t *testing.T) {
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, `routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies: {jwt: {leeway: "0"}}
consumers:
  - name: alice
    credentials:
      jwt: [{issuer: "https://alice.example", secret: "`+aliceSecret+`"}]
`), nil)
	tok := hmacSigner("", aliceSecret, jwa.HS256()).sign(t, claims("https://alice.example",
		map[string]any{"exp": time.Now().Unix() + 2}))
	mustAccept(t, call(t, g.URL+"/api", tok))
	mustAccept(t, call(t, g.URL+"/api", tok))
	testutil.Eventually(t, 10*time.Second, "the cached token expires", func() bool {
		return call(t, g.URL+"/api", tok).status == http.StatusUnauthorized
	})
	mustRefuse(t, call(t, g.URL+"/api", tok), "expired")
}

func TestTokenLocations(t *testing.T) {
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, `routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies: {jwt: {header: X-Token, query: jwt, cookie: session}}
consumers:
  - name: alice
    credentials:
      jwt: [{issuer: "https://alice.example", secret: "`+aliceSecret+`"}]
`), nil)
	tok := hmacSigner("", aliceSecret, jwa.HS256()).sign(t, claims("https://alice.example", nil))
	for name, edit := range map[string]func(*http.Request){
		"header":        func(r *http.Request) { r.Header.Set("X-Token", tok) },
		"header bearer": func(r *http.Request) { r.Header.Set("X-Token", "Bearer "+tok) },
		"query":         func(r *http.Request) { r.URL.RawQuery = "a=1&jwt=" + tok },
		"cookie":        func(r *http.Request) { r.Header.Set("Cookie", "theme=dark; session="+tok+"; x=y") },
	} {
		t.Run(name, func(t *testing.T) {
			up := mustAccept(t, call(t, g.URL+"/api", "", edit))
			if got := up.Get("X-Consumer-Name"); got != "alice" {
				t.Fatalf("X-Consumer-Name = %q", got)
			}
		})
	}
	t.Run("authorization is not looked at", func(t *testing.T) {
		a := call(t, g.URL+"/api", tok)
		if a.status != http.StatusUnauthorized || a.errCode != "unauthorized" {
			t.Fatalf("status %d code %q", a.status, a.errCode)
		}
	})
}

func TestAnonymousForUnknownConsumer(t *testing.T) {
	s := newSigner(t, "k1", jwa.EdDSA())
	p := newIdP(t, s)
	backend := echoBackend(t)
	g := gatewaytest.Start(t, gatewaytest.Server+gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id, anonymous: guest}
consumers:
  - name: guest
  - name: app
`, p.url())), nil)
	up := mustAccept(t, call(t, g.URL+"/api", s.sign(t, claims("https://idp.test", map[string]any{"client_id": "someone-else"}))))
	if got := up.Get("X-Consumer-Name"); got != "guest" {
		t.Fatalf("X-Consumer-Name = %q, want the anonymous consumer", got)
	}
	up = mustAccept(t, call(t, g.URL+"/api", s.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))))
	if got := up.Get("X-Consumer-Name"); got != "app" {
		t.Fatalf("X-Consumer-Name = %q", got)
	}
}

func TestJWKSCacheSurvivesReload(t *testing.T) {
	s := newSigner(t, "k1", jwa.RS256())
	p := newIdP(t, s)
	backend := echoBackend(t)
	cfg := func(extraRoute string) string {
		return gatewaytest.Server + gatewayYAML(backend.URL, fmt.Sprintf(`routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id}
%s
consumers:
  - name: app
`, p.url(), extraRoute))
	}
	g := gatewaytest.Start(t, cfg(""), nil)
	tok := s.sign(t, claims("https://idp.test", map[string]any{"client_id": "app"}))
	mustAccept(t, call(t, g.URL+"/api", tok))
	g.Reload(t, cfg(fmt.Sprintf(`  - name: other
    paths: ["/other"]
    service: backend
    policies:
      jwt: {jwks_url: %q, consumer_claim: client_id}
`, p.url())))
	mustAccept(t, call(t, g.URL+"/api", tok))
	mustAccept(t, call(t, g.URL+"/other", tok))
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches across a reload and two routes, want 1", n)
	}
}

func TestSettingsErrors(t *testing.T) {
	cases := []struct {
		name, policy, want string
	}{
		{"alg none", "{algorithms: [HS256, none]}", `t.yaml:9:33: algorithm "none" is never accepted`},
		{"alg case", "{algorithms: [rs256]}", `t.yaml:9:26: unknown algorithm "rs256"; did you mean "RS256"?`},
		{"consumer header", "{claims_to_headers: {sub: X-Consumer-Name}}", `t.yaml:9:33: header "X-Consumer-Name" is reserved`},
		{"jwks url", "{jwks_url: idp.example.com/keys}", `t.yaml:9:13: jwks_url must be an absolute http or https URL`},
		{"typo", "{audience: [a]}", `t.yaml:9:13: unknown field "audience"; did you mean "audiences"?`},
		{"refetch above refresh", "{jwks_refresh: 1m, jwks_min_refetch_interval: 2m}", `t.yaml:9:31: jwks_min_refetch_interval (2m0s) must not exceed jwks_refresh (1m0s)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := `services:
  - name: backend
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: api
    paths: ["/api"]
    service: backend
    policies:
      jwt: ` + c.policy + "\n"
			_, err := config.Parse("t.yaml", []byte(yaml))
			if err == nil {
				t.Fatal("config accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, c.want)
			}
		})
	}
}

func TestJWKSConsumerByIssuer(t *testing.T) {
	s := newSigner(t, "k1", jwa.RS256())
	p := newIdP(t, s)
	chain := compileJWT(t, map[string]any{"jwks_url": p.url()}, []config.Consumer{
		// A credential naming only an issuer says whose tokens the JWKS vouches for.
		{Name: "partner", Credentials: config.Credentials{JWT: []config.JWTCredential{{Issuer: "https://partner.idp"}}}},
		{Name: "a", Credentials: config.Credentials{JWT: []config.JWTCredential{{Issuer: "https://shared.idp"}}}},
		{Name: "b", Credentials: config.Credentials{JWT: []config.JWTCredential{{Issuer: "https://shared.idp"}}}},
	})
	var e exchange
	c, r := e.run(chain, []byte("Bearer "+s.sign(t, claims("https://partner.idp", nil))))
	if r != nil || c == nil || c.Name != "partner" {
		t.Fatalf("consumer %v, refusal %v; want partner", c, r)
	}
	// Two consumers for one issuer: the token does not say which.
	_, r = e.run(chain, []byte("Bearer "+s.sign(t, claims("https://shared.idp", nil))))
	if r == nil || !strings.Contains(r.Message, "no consumer") {
		t.Fatalf("refusal %v, want no consumer", r)
	}
	_, r = e.run(chain, []byte("Bearer "+s.sign(t, claims("https://stranger.idp", nil))))
	if r == nil || !strings.Contains(r.Message, "no consumer") {
		t.Fatalf("refusal %v, want no consumer", r)
	}
}

func TestBadConsumerKeyRefusesTheConfiguration(t *testing.T) {
	for _, c := range []struct {
		name string
		cred config.JWTCredential
		want string
	}{
		{"garbage key", config.JWTCredential{Issuer: "x", PublicKey: "not a key"}, `consumer "bob": credentials.jwt[0]: public_key`},
		{"secret for RS256", config.JWTCredential{Issuer: "x", Secret: "s", Algorithm: "RS256"}, "RS256 needs a public_key"},
		{"unknown algorithm", config.JWTCredential{Issuer: "x", Secret: "s", Algorithm: "HS999"}, `unknown algorithm "HS999"`},
		{"key of another family", config.JWTCredential{Issuer: "x", PublicKey: newSigner(t, "", jwa.EdDSA()).publicPEM(t), Algorithm: "ES256"}, "ES256 does not fit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &policy.Build{Route: "r", Consumers: policy.NewDirectory([]config.Consumer{
				{Name: "bob", Credentials: config.Credentials{JWT: []config.JWTCredential{c.cred}}},
			}), State: policy.NewState(), Shared: policy.NewShared(), Logger: slog.New(slog.DiscardHandler)}
			defer b.State.Close()
			_, err := policy.Compile(config.Policies{"jwt": map[string]any{}}, b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
