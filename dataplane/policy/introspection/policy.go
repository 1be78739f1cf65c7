package introspection

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "oauth2-introspection"

func init() {
	policy.Register(Name, policy.Authenticate, build)
}

// Refusals that do not vary per request.
var (
	rejectInactive = &policy.Reject{Status: 401, Code: "invalid_token", Message: "the access token is not active"}
	rejectNoUser   = &policy.Reject{Status: 401, Code: "invalid_token", Message: "the access token names no user"}
	rejectUnknown  = &policy.Reject{Status: 401, Code: "unknown_consumer", Message: "the access token's user is not a consumer of this API"}
	// The endpoint could not say: the token may well be valid.
	rejectUnavailable = &policy.Reject{Status: 503, Code: "auth_unavailable", Message: "the access token could not be checked; try again later"}
)

// WWW-Authenticate challenges (RFC 6750 section 3).
const (
	challenge        = `Bearer realm="tollgate"`
	challengeInvalid = `Bearer realm="tollgate", error="invalid_token"`
)

// logEvery spaces out the logs of failing calls to one endpoint.
const logEvery = 10 * time.Second

// instance is the policy on one route.
type instance struct {
	policy.AuthSettings
	shared        *endpointState
	endpoint      string
	authorization string
	timeout       time.Duration
	cacheTTL      time.Duration
	negativeTTL   time.Duration
	claim         string
	required      bool
	scopes        []string
	rejectScope   *policy.Reject
	headers       []claimHeader
	hide          bool
	consumers     *policy.Directory
	logger        *slog.Logger
}

// claimHeader sends one field of the answer upstream.
type claimHeader struct{ claim, header string }

func build(s *Settings, b *policy.Build) (any, error) {
	size := s.CacheSize
	if size == 0 {
		size = defaultCacheSize
	}
	key := Name + "\x00" + s.URL + "\x00" + s.ClientID + "\x00" + strconv.Itoa(size)
	p := &instance{
		AuthSettings:  s.AuthSettings,
		shared:        b.State.Get(key, func() any { return newEndpointState(size) }).(*endpointState),
		endpoint:      s.URL,
		authorization: basicAuth(s.ClientID, s.ClientSecret),
		timeout:       s.Timeout.Or(defaultTimeout),
		cacheTTL:      s.cacheTTL(),
		negativeTTL:   s.negativeTTL(),
		claim:         s.ConsumerClaim,
		required:      s.ConsumerRequired,
		scopes:        s.Scopes,
		hide:          s.HideCredentials,
		consumers:     b.Consumers,
		logger:        b.Logger,
	}
	if p.claim == "" {
		p.claim = defaultConsumerClaim
	}
	if len(p.scopes) > 0 {
		p.rejectScope = &policy.Reject{Status: 403, Code: "insufficient_scope",
			Message: "the access token lacks a scope this route requires (" + strings.Join(p.scopes, " ") + ")"}
	}
	for _, claim := range slices.Sorted(maps.Keys(s.ClaimsToHeaders)) {
		p.headers = append(p.headers, claimHeader{claim: claim, header: s.ClaimsToHeaders[claim]})
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	return p, nil
}

// Authenticate implements policy.Authenticator.
func (p *instance) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	token := bearerToken(x.Header("Authorization"))
	if token == nil {
		return nil, nil
	}
	now := time.Now()
	r, err := p.shared.resolve(p, sha256.Sum256(token), token, now)
	if err != nil {
		p.logFailure(err, now)
		return nil, rejectUnavailable
	}
	if !r.active {
		return nil, rejectInactive
	}
	if !r.grants(p.scopes) {
		return nil, p.rejectScope
	}
	c, rej := p.consumerOf(r)
	if rej != nil {
		return nil, rej
	}
	for _, h := range p.headers {
		// A header the client sent under the same name never goes upstream.
		if v, ok := r.claims[h.claim]; ok {
			x.SetRequestHeader(h.header, v)
		} else {
			x.DelRequestHeader(h.header)
		}
	}
	if p.hide {
		x.DelRequestHeader("Authorization")
	}
	x.Credential = Name
	return c, nil
}

// consumerOf is the consumer the token's user names: a configured one, or
// one of its own unless consumers are required.
func (p *instance) consumerOf(r *result) (*policy.Consumer, *policy.Reject) {
	id := identityOf(r.claims, p.claim)
	if id == "" {
		return nil, rejectNoUser
	}
	if c, ok := p.consumers.Get(id); ok {
		return c, nil
	}
	switch {
	case p.required:
		return nil, rejectUnknown
	case id == r.identity:
		return r.stranger, nil
	}
	// A route looking at another field than the one that fetched the
	// answer: rare enough to build the consumer each time.
	return policy.NewConsumer(&config.Consumer{Name: id}), nil
}

// fresh reports whether a cached answer may still be used by this route.
func (p *instance) fresh(r *result, now time.Time) bool {
	if !r.active {
		return now.Sub(r.fetched) < p.negativeTTL
	}
	if !r.tokenExp.IsZero() && !now.Before(r.tokenExp) {
		return false
	}
	return now.Sub(r.fetched) < p.cacheTTL
}

// grants reports whether the token has every scope of want.
func (r *result) grants(want []string) bool {
	for _, w := range want {
		if !slices.Contains(r.scopes, w) {
			return false
		}
	}
	return true
}

// Respond implements policy.Responder: a 401 of the gateway's own on a
// route that takes bearer tokens says so (RFC 6750 section 3). It is set
// here rather than with the refusal because another authentication policy
// of the route may still accept the request.
func (p *instance) Respond(x *policy.Exchange) {
	if x.ResponseStatus() != 401 || x.Consumer != nil || len(x.ResponseHeader("WWW-Authenticate")) > 0 {
		return
	}
	if bearerToken(x.Header("Authorization")) != nil {
		x.SetResponseHeader("WWW-Authenticate", challengeInvalid)
	} else {
		x.SetResponseHeader("WWW-Authenticate", challenge)
	}
}

// logFailure logs a failed call, at most once per logEvery per endpoint: an
// endpoint that is down fails every request.
func (p *instance) logFailure(err error, now time.Time) {
	last := p.shared.lastLog.Load()
	if now.UnixNano()-last < int64(logEvery) || !p.shared.lastLog.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	p.logger.Error("oauth2-introspection: token not checked, answering 503", "url", p.endpoint, "error", err)
}

// bearerToken returns the token of an "Authorization: Bearer" header, or
// nil. The scheme is case-insensitive (RFC 9110 section 11.1).
func bearerToken(h []byte) []byte {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !bytes.EqualFold(h[:len(scheme)], []byte(scheme)) {
		return nil
	}
	t := bytes.TrimSpace(h[len(scheme):])
	if len(t) == 0 {
		return nil
	}
	return t
}
