package jwtauth

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Settings are the jwt policy's settings.
type Settings struct {
	policy.AuthSettings `yaml:",inline"`

	// JWKSURL is where the identity provider publishes its public keys;
	// tokens carrying a kid are checked against them.
	JWKSURL string `yaml:"jwks_url"`
	// Issuers, when set, are the accepted values of the iss claim.
	Issuers []string `yaml:"issuers"`
	// Audiences, when set, must share a value with the aud claim.
	Audiences []string `yaml:"audiences"`
	// ClaimsToHeaders sends claims upstream: claim name -> header name.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`

	// Header carries the token; "Authorization" (the default) with the
	// Bearer scheme, any other header with or without it.
	Header string `yaml:"header"`
	// Query and Cookie name a query parameter and a cookie that may carry
	// the token instead ("" = not looked at).
	Query  string `yaml:"query"`
	Cookie string `yaml:"cookie"`
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 30s;
	// a pointer so that an explicit 0 is kept).
	Leeway *config.Duration `yaml:"leeway"`
	// ConsumerClaim names the claim whose value is the consumer's name;
	// empty finds the consumer by the token's issuer.
	ConsumerClaim string `yaml:"consumer_claim"`
	// Algorithms restricts the accepted algorithms; by default every one
	// the keys allow. "none" is never accepted.
	Algorithms []string `yaml:"algorithms"`
	// JWKSRefresh is how often the key set is fetched again (default 5m).
	JWKSRefresh config.Duration `yaml:"jwks_refresh"`
	// JWKSMinRefetchInterval bounds the fetches an unknown kid may cause
	// (default 10s).
	JWKSMinRefetchInterval config.Duration `yaml:"jwks_min_refetch_interval"`
	// TokenCacheSize bounds the cache of verified tokens (default 4096;
	// 0 switches the cache off).
	TokenCacheSize *int `yaml:"token_cache_size"`
}

const (
	defaultHeader         = "Authorization"
	defaultLeeway         = 30 * time.Second
	defaultJWKSRefresh    = 5 * time.Minute
	defaultMinRefetch     = 10 * time.Second
	defaultTokenCacheSize = 4096
	maxTokenCacheSize     = 1 << 20
	minJWKSRefresh        = time.Second
	maxLeeway             = time.Hour
	maxClaimsToHeaders    = 64
	tokenCacheMaxLifetime = time.Minute
	jwksFetchTimeout      = 10 * time.Second
	jwksMaxBodyBytes      = 1 << 20
	maxTokenBytes         = 16 << 10
)

func (s *Settings) header() string { return cmp.Or(s.Header, defaultHeader) }

func (s *Settings) leeway() time.Duration {
	if s.Leeway == nil {
		return defaultLeeway
	}
	return s.Leeway.D()
}

func (s *Settings) tokenCacheSize() int {
	if s.TokenCacheSize == nil {
		return defaultTokenCacheSize
	}
	return *s.TokenCacheSize
}

func (s *Settings) jwksRefresh() time.Duration { return s.JWKSRefresh.Or(defaultJWKSRefresh) }

func (s *Settings) minRefetch() time.Duration {
	return s.JWKSMinRefetchInterval.Or(defaultMinRefetch)
}

// Headers a claim may not be sent as: the consumer identity headers the
// engine owns, and those that frame the request.
var reservedHeaders = []string{
	"host", "content-length", "transfer-encoding", "connection", "upgrade", "te",
	"trailer", "keep-alive", "proxy-connection", "x-request-id", "traceparent",
}

// Validate implements policy.Validator.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if s.JWKSURL != "" {
		u, err := url.Parse(s.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("jwks_url", "jwks_url must be an absolute http or https URL, got %q", s.JWKSURL)
		}
	}
	for i, iss := range s.Issuers {
		if iss == "" {
			add(fmt.Sprintf("issuers[%d]", i), "issuer must not be empty")
		}
	}
	for i, aud := range s.Audiences {
		if aud == "" {
			add(fmt.Sprintf("audiences[%d]", i), "audience must not be empty")
		}
	}
	if len(s.ClaimsToHeaders) > maxClaimsToHeaders {
		add("claims_to_headers", "at most %d claims may be sent upstream", maxClaimsToHeaders)
	}
	for _, claim := range slices.Sorted(maps.Keys(s.ClaimsToHeaders)) {
		h := s.ClaimsToHeaders[claim]
		p := "claims_to_headers." + claim
		switch lower := strings.ToLower(h); {
		case claim == "":
			add(p, "claim name must not be empty")
		case !validHeaderName(h):
			add(p, "%q is not a valid header name", h)
		case strings.HasPrefix(lower, "x-consumer-") || strings.HasPrefix(lower, "x-authenticated-"):
			add(p, "header %q is reserved for the authenticated consumer", h)
		case strings.EqualFold(h, s.header()):
			add(p, "header %q carries the token itself", h)
		case slices.Contains(reservedHeaders, lower):
			add(p, "header %q cannot carry a claim", h)
		}
	}
	if s.Header != "" && !validHeaderName(s.Header) {
		add("header", "%q is not a valid header name", s.Header)
	}
	if s.Query != "" && strings.ContainsAny(s.Query, "&=#? \t") {
		add("query", "%q is not a valid query parameter name", s.Query)
	}
	if s.Cookie != "" && !validHeaderName(s.Cookie) {
		add("cookie", "%q is not a valid cookie name", s.Cookie)
	}
	if s.Leeway != nil && s.Leeway.D() > maxLeeway {
		add("leeway", "leeway must be at most %s, got %s", maxLeeway, s.Leeway.D())
	}
	for i, name := range s.Algorithms {
		p := fmt.Sprintf("algorithms[%d]", i)
		if strings.EqualFold(name, "none") {
			add(p, `algorithm "none" is never accepted`)
			continue
		}
		if parseAlgorithm(name) == algUnknown {
			msg := fmt.Sprintf("unknown algorithm %q (one of %s)", name, strings.Join(algorithmNames(), ", "))
			if a := algorithmFold(name); a != algUnknown {
				msg = fmt.Sprintf("unknown algorithm %q; did you mean %q?", name, a.String())
			}
			add(p, "%s", msg)
		}
	}
	if s.JWKSRefresh != 0 && s.JWKSRefresh.D() < minJWKSRefresh {
		add("jwks_refresh", "jwks_refresh must be at least %s, got %s", minJWKSRefresh, s.JWKSRefresh.D())
	}
	if s.minRefetch() > s.jwksRefresh() {
		add("jwks_min_refetch_interval", "jwks_min_refetch_interval (%s) must not exceed jwks_refresh (%s)",
			s.minRefetch(), s.jwksRefresh())
	}
	if n := s.TokenCacheSize; n != nil && (*n < 0 || *n > maxTokenCacheSize) {
		add("token_cache_size", "token_cache_size must be between 0 and %d, got %d", maxTokenCacheSize, *n)
	}
	return errs
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 field name).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
