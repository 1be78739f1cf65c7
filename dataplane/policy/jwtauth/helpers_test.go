package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	_ "github.com/tollgate/tollgate/dataplane/policy/jwtauth"
)

// signer signs tokens with one private key.
type signer struct {
	kid  string
	alg  jwa.SignatureAlgorithm
	priv any // private key, or []byte for HMAC
	pub  any
}

func newSigner(t testing.TB, kid string, alg jwa.SignatureAlgorithm) *signer {
	t.Helper()
	s := &signer{kid: kid, alg: alg}
	var err error
	switch alg.String() {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		var k *rsa.PrivateKey
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		s.priv, s.pub = k, &k.PublicKey
	case "ES256":
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s.priv, s.pub = k, &k.PublicKey
	case "ES384":
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		s.priv, s.pub = k, &k.PublicKey
	case "EdDSA":
		var pub ed25519.PublicKey
		var priv ed25519.PrivateKey
		pub, priv, err = ed25519.GenerateKey(rand.Reader)
		s.priv, s.pub = priv, pub
	default:
		t.Fatalf("no key generator for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hmacSigner(kid, secret string, alg jwa.SignatureAlgorithm) *signer {
	return &signer{kid: kid, alg: alg, priv: []byte(secret)}
}

// sign makes a compact JWS of claims, with the signer's kid (if any).
func (s *signer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return s.signRaw(t, mustJSON(t, claims))
}

// signRaw signs payload as it is, JSON or not.
func (s *signer) signRaw(t testing.TB, payload []byte) string {
	t.Helper()
	hdr := jws.NewHeaders()
	if s.kid != "" {
		if err := hdr.Set(jws.KeyIDKey, s.kid); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign(payload, jws.WithKey(s.alg, s.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// jwk is the signer's public key as a JWK with kid and alg.
func (s *signer) jwk(t testing.TB) jwk.Key {
	t.Helper()
	k, err := jwk.Import(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, s.kid); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.AlgorithmKey, s.alg); err != nil {
		t.Fatal(err)
	}
	return k
}

// publicPEM is the signer's public key in PEM.
func (s *signer) publicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rawToken assembles a token from a header and claims, with any signature:
// for tokens no library would make (alg none, crit).
func rawToken(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	return b64(mustJSON(t, header)) + "." + b64(mustJSON(t, claims)) + "." + b64(sig)
}

// idp is an identity provider's JWKS endpoint whose keys can change, and
// which counts the fetches it answers.
type idp struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu   sync.Mutex
	keys []jwk.Key
	gate chan struct{} // when set, fetches wait until it is closed
}

func newIdP(t testing.TB, signers ...*signer) *idp {
	t.Helper()
	p := &idp{}
	for _, s := range signers {
		p.keys = append(p.keys, s.jwk(t))
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) url() string { return p.srv.URL + "/.well-known/jwks.json" }

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	set := jwk.NewSet()
	p.mu.Lock()
	for _, k := range p.keys {
		set.AddKey(k) //nolint:errcheck // distinct test keys
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	json.NewEncoder(w).Encode(set) //nolint:errcheck // the client sees a broken set
}

func (p *idp) publish(t testing.TB, s *signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, s.jwk(t))
}

// hold makes fetches wait until the returned func is called.
func (p *idp) hold(t testing.TB) (release func()) {
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// echoBackend answers every request with the request's headers as JSON.
func echoBackend(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header) //nolint:errcheck // the test reads it
	}))
	t.Cleanup(srv.Close)
	return srv
}

// answer is what the gateway said to one request.
type answer struct {
	status   int
	header   http.Header
	upstream http.Header // the headers the backend saw, on success
	errCode  string
	errMsg   string
}

func call(t testing.TB, url, token string, edit ...func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, e := range edit {
		e(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.upstream); err != nil {
			t.Fatalf("backend answer %q: %v", body, err)
		}
		return a
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error answer %q: %v", body, err)
	}
	a.errCode, a.errMsg = e.Error.Code, e.Error.Message
	return a
}

// mustAccept checks a 200 and returns the headers the backend saw.
func mustAccept(t testing.TB, a answer) http.Header {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d (%s: %s), want 200", a.status, a.errCode, a.errMsg)
	}
	return a.upstream
}

// mustRefuse checks a 401 invalid_token whose message contains why.
func mustRefuse(t testing.TB, a answer, why string) {
	t.Helper()
	if a.status != http.StatusUnauthorized || a.errCode != "invalid_token" {
		t.Fatalf("status %d code %q (%s), want 401 invalid_token", a.status, a.errCode, a.errMsg)
	}
	if !strings.Contains(a.errMsg, why) {
		t.Fatalf("message %q does not say %q", a.errMsg, why)
	}
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
}

// claims are standard claims valid for the next five minutes, plus extra.
func claims(iss string, extra map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": iss, "iat": now, "nbf": now, "exp": now + 300}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// indent indents every line of s by n spaces, for PEM blocks in YAML.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

// gatewayYAML is a configuration with one service (backend) and routes,
// consumers and policies given as YAML fragments.
func gatewayYAML(backend string, rest string) string {
	return fmt.Sprintf(`services:
  - name: backend
    targets: [{url: %q}]
%s`, backend, rest)
}
