package jwtauth

import (
	"crypto/sha256"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "jwt"

func init() { policy.Register(Name, policy.Authenticate, build) }

// Every refusal is a 401 invalid_token (RFC 6750) whose message says why.
// They are made once: refusing allocates nothing.
var (
	rejectMalformed      = invalidToken("malformed token")
	rejectAlgorithm      = invalidToken("token algorithm not allowed")
	rejectKeyAlgorithm   = invalidToken("token algorithm does not match its key")
	rejectCritical       = invalidToken("token has a critical header this gateway does not understand")
	rejectUnknownKey     = invalidToken("unknown signing key")
	rejectSignature      = invalidToken("bad signature")
	rejectExpired        = invalidToken("token expired")
	rejectNotYetValid    = invalidToken("token not valid yet (nbf)")
	rejectIssuedInFuture = invalidToken("token issued in the future (iat)")
	rejectIssuer         = invalidToken("wrong issuer")
	rejectAudience       = invalidToken("wrong audience")
	rejectNoConsumer     = invalidToken("no consumer for this token")
)

func invalidToken(msg string) *policy.Reject {
	return &policy.Reject{Status: 401, Code: "invalid_token", Message: msg}
}

const wwwAuthenticate = `Bearer error="invalid_token"`

// authenticator is the jwt policy of one route.
type authenticator struct {
	policy.AuthSettings

	header string
	bearer bool // header is Authorization: only the Bearer scheme carries a token
	query  string
	cookie string

	leeway     float64 // seconds
	issuers    []string
	audiences  []string
	algorithms algSet

	names       claimNames
	headerNames []string // upstream header of names.headers[i]

	creds *credentials
	jwks  *jwks // nil without jwks_url
	cache *tokenCache
}

func build(s *Settings, b *policy.Build) (any, error) {
	creds, err := sharedCredentials(b)
	if err != nil {
		return nil, err
	}
	a := &authenticator{
		AuthSettings: s.AuthSettings,
		header:       s.header(),
		query:        s.Query,
		cookie:       s.Cookie,
		leeway:       s.leeway().Seconds(),
		issuers:      s.Issuers,
		audiences:    s.Audiences,
		algorithms:   allAlgorithms,
		names:        claimNames{consumer: s.ConsumerClaim},
		creds:        creds,
		cache:        newTokenCache(s.tokenCacheSize()),
	}
	a.bearer = strings.EqualFold(a.header, defaultHeader)
	if len(s.Algorithms) > 0 {
		a.algorithms = 0
		for _, name := range s.Algorithms {
			a.algorithms |= setOf(parseAlgorithm(name))
		}
	}
	for _, claim := range slices.Sorted(maps.Keys(s.ClaimsToHeaders)) {
		a.names.headers = append(a.names.headers, claim)
		a.headerNames = append(a.headerNames, s.ClaimsToHeaders[claim])
	}
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	if s.JWKSURL == "" && len(creds.byIssuer) == 0 {
		log.Warn("jwt: no jwks_url and no consumer has a jwt credential: every token will be refused", "route", b.Route)
	}
	if s.JWKSURL != "" {
		key := jwksStateKey(s.JWKSURL, s.jwksRefresh(), s.minRefetch())
		a.jwks = b.State.Get(key, func() any {
			return newJWKS(s.JWKSURL, s.jwksRefresh(), s.minRefetch(), log)
		}).(*jwks)
	}
	return a, nil
}

// Authenticate implements policy.Authenticator.
func (a *authenticator) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	raw := a.token(x)
	if len(raw) == 0 {
		a.stripClaimHeaders(x)
		return nil, nil
	}
	now := time.Now()
	var sum [sha256.Size]byte
	if a.cache != nil {
		sum = sha256.Sum256(raw)
		if v := a.cache.get(&sum, now.UnixNano()); v != nil {
			a.stripClaimHeaders(x)
			for _, h := range v.headers {
				x.SetRequestHeader(h.name, h.value)
			}
			x.Credential = Name
			return v.consumer, nil
		}
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	cons, r := a.verify(raw, sc, now)
	// From here on raw is not read: the request's headers may change.
	a.stripClaimHeaders(x)
	if r != nil {
		x.SetAnswerHeader("WWW-Authenticate", wwwAuthenticate)
		return nil, r
	}
	t := &sc.tok
	var v *verified
	if a.cache != nil {
		v = &verified{consumer: cons, until: a.cacheUntil(t, now)}
	}
	out := sc.out[:0]
	for i, claim := range t.claims {
		if claim == nil {
			continue
		}
		start := len(out)
		var ok bool
		if out, ok = appendPlain(out, claim); !ok || !safeHeaderValue(out[start:]) {
			out = out[:start] // null, or a value no header can carry faithfully
			continue
		}
		value := out[start:]
		if v != nil {
			h := headerValue{name: a.headerNames[i], value: string(value)}
			v.headers = append(v.headers, h)
			x.SetRequestHeader(h.name, h.value)
		} else {
			// SetRequestHeader copies the value: a view of the scratch will do.
			x.SetRequestHeader(a.headerNames[i], unsafe.String(unsafe.SliceData(value), len(value)))
		}
	}
	sc.out = out
	if v != nil {
		a.cache.put(&sum, v, now.UnixNano())
	}
	x.Credential = Name
	return cons, nil
}

// token finds the request's token: in the header, then the query
// parameter, then the cookie.
func (a *authenticator) token(x *policy.Exchange) []byte {
	if v := x.Header(a.header); len(v) > 0 {
		if t := bearerToken(v); t != nil {
			return t
		}
		if !a.bearer {
			return v
		}
	}
	if a.query != "" {
		if v := x.Query(a.query); len(v) > 0 {
			return v
		}
	}
	if a.cookie != "" {
		if v := cookieValue(x.HeaderValues("Cookie"), a.cookie); len(v) > 0 {
			return v
		}
	}
	return nil
}

// stripClaimHeaders removes the claim headers a client may have sent
// itself, so that upstream they only ever come from a verified token.
func (a *authenticator) stripClaimHeaders(x *policy.Exchange) {
	for _, h := range a.headerNames {
		x.DelRequestHeader(h)
	}
}

// verify checks the token and finds its consumer.
func (a *authenticator) verify(raw []byte, sc *scratch, now time.Time) (*policy.Consumer, *policy.Reject) {
	if r := parseToken(raw, &a.names, sc); r != nil {
		return nil, r
	}
	t := &sc.tok
	if !a.algorithms.has(t.alg) {
		return nil, rejectAlgorithm
	}
	key, r := a.checkSignature(t)
	if r != nil {
		return nil, r
	}
	nowSec := float64(now.UnixNano()) / 1e9
	switch {
	case t.hasExp && nowSec >= t.exp+a.leeway:
		return nil, rejectExpired
	case t.hasNbf && nowSec+a.leeway < t.nbf:
		return nil, rejectNotYetValid
	case t.hasIat && t.iat > nowSec+a.leeway:
		return nil, rejectIssuedInFuture
	case len(a.issuers) > 0 && !containsString(a.issuers, t.iss):
		return nil, rejectIssuer
	case len(a.audiences) > 0 && !t.audienceIn(a.audiences):
		return nil, rejectAudience
	}
	cons := a.consumerOf(t, key)
	if cons == nil {
		return nil, rejectNoConsumer
	}
	return cons, nil
}

// checkSignature finds the token's key and checks the signature with it.
// A kid the JWKS has picks its key; otherwise the issuer's credentials are
// tried; a kid still unknown then refetches the JWKS, within its bounds.
func (a *authenticator) checkSignature(t *token) (*verifyKey, *policy.Reject) {
	if a.jwks != nil && len(t.kid) > 0 {
		if keys := a.jwks.keys().lookup(t.kid); len(keys) > 0 {
			return tryKeys(keys, t)
		}
	}
	keyForOtherAlg := false
	if iss := a.creds.byIssuer[string(t.iss)]; iss != nil && len(iss.keys) > 0 {
		k, usable := verifyWith(iss.keys, t)
		if k != nil {
			return k, nil
		}
		if usable {
			return nil, rejectSignature
		}
		keyForOtherAlg = true
	}
	if a.jwks != nil {
		var keys []*verifyKey
		if len(t.kid) > 0 {
			keys = a.jwks.refetch().lookup(t.kid)
		} else if set := a.jwks.keys(); set != nil {
			keys = set.all
		}
		if len(keys) > 0 {
			return tryKeys(keys, t)
		}
	}
	if keyForOtherAlg {
		return nil, rejectKeyAlgorithm
	}
	return nil, rejectUnknownKey
}

func tryKeys(keys []*verifyKey, t *token) (*verifyKey, *policy.Reject) {
	k, usable := verifyWith(keys, t)
	switch {
	case k != nil:
		return k, nil
	case usable:
		return nil, rejectSignature
	}
	return nil, rejectKeyAlgorithm
}

// verifyWith returns the first of keys that verifies the token, and
// whether any of them may verify its algorithm at all.
func verifyWith(keys []*verifyKey, t *token) (match *verifyKey, usable bool) {
	for _, k := range keys {
		if !k.algs.has(t.alg) {
			continue
		}
		usable = true
		if k.verify(t.alg, t.signingInput, t.signature) {
			return k, true
		}
	}
	return nil, usable
}

// consumerOf names the consumer of a verified token. A consumer's own key
// names its owner (and consumer_claim may not name another: one consumer's
// secret must not vouch for someone else). A JWKS key names nobody: the
// consumer is the one consumer_claim names, else the one consumer holding
// a credential for the token's issuer.
func (a *authenticator) consumerOf(t *token, key *verifyKey) *policy.Consumer {
	if key.consumer != nil {
		if a.names.consumer != "" && string(t.consumer) != key.consumer.Name {
			return nil
		}
		return key.consumer
	}
	if a.names.consumer != "" {
		return a.creds.byName[string(t.consumer)]
	}
	if iss := a.creds.byIssuer[string(t.iss)]; iss != nil && len(iss.consumers) == 1 {
		return iss.consumers[0]
	}
	return nil
}

// cacheUntil is when a verified token's cache entry ends: a minute from
// now, or sooner when the token expires.
func (a *authenticator) cacheUntil(t *token, now time.Time) int64 {
	until := now.Add(tokenCacheMaxLifetime).UnixNano()
	if t.hasExp {
		// Compared as floats first: a far-away exp would overflow int64.
		if end := t.exp + a.leeway; end < float64(until)/1e9 {
			until = int64(end * 1e9)
		}
	}
	return until
}

// safeHeaderValue refuses control characters: a claim must not be able to
// split or end a header line.
func safeHeaderValue(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Challenge implements policy.Challenger (RFC 6750 section 3).
func (a *authenticator) Challenge() string { return `Bearer realm="tollgate"` }
