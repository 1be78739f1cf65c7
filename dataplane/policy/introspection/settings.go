package introspection

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Defaults of the settings.
const (
	defaultTimeout       = 5 * time.Second
	defaultCacheTTL      = 5 * time.Minute
	defaultNegativeTTL   = 10 * time.Second
	defaultCacheSize     = 10000
	defaultConsumerClaim = "username"
)

// Settings are the oauth2-introspection policy's settings.
type Settings struct {
	policy.AuthSettings `yaml:",inline"`

	// URL is the introspection endpoint; ClientID and ClientSecret are the
	// gateway's credentials there.
	URL          string `yaml:"url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Timeout bounds one call to the endpoint.
	Timeout config.Duration `yaml:"timeout"`
	// CacheTTL bounds how long an active answer is reused (the token's exp
	// may end it sooner); NegativeCacheTTL how long an inactive one is.
	// Pointers, so that "0s" (no caching) differs from unset (default).
	CacheTTL         *config.Duration `yaml:"cache_ttl"`
	NegativeCacheTTL *config.Duration `yaml:"negative_cache_ttl"`
	// CacheSize bounds the number of tokens cached.
	CacheSize int `yaml:"cache_size"`
	// ConsumerClaim names the field of the answer holding the consumer's
	// name; "sub" then "client_id" are used when the answer lacks it.
	ConsumerClaim string `yaml:"consumer_claim"`
	// ConsumerRequired refuses tokens whose user is not a consumer.
	ConsumerRequired bool `yaml:"consumer_required"`
	// Scopes must all be granted to the token.
	Scopes []string `yaml:"scopes"`
	// ClaimsToHeaders sends fields of the answer upstream, field to header.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// HideCredentials removes the Authorization header before the request
	// goes upstream.
	HideCredentials bool `yaml:"hide_credentials"`
}

// Validate implements policy.Validator.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if s.URL == "" {
		add("url", "url is required: the authorization server's introspection endpoint")
	} else if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "url must be an absolute http or https URL, got %q", s.URL)
	}
	if s.ClientID == "" {
		add("client_id", "client_id is required: introspection endpoints authenticate their callers")
	}
	if s.ClientSecret == "" {
		add("client_secret", "client_secret is required: introspection endpoints authenticate their callers")
	}
	if s.CacheSize < 0 {
		add("cache_size", "cache_size must not be negative, got %d", s.CacheSize)
	}
	for i, sc := range s.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			add(fmt.Sprintf("scopes[%d]", i), "a scope is one non-empty word, got %q", sc)
		}
	}
	for _, claim := range slices.Sorted(maps.Keys(s.ClaimsToHeaders)) {
		if msg := checkHeaderName(s.ClaimsToHeaders[claim]); msg != "" {
			add("claims_to_headers."+claim, "%s", msg)
		}
	}
	return errs
}

// checkHeaderName explains why name cannot carry a claim upstream, or
// returns "".
func checkHeaderName(name string) string {
	if name == "" {
		return "header name must not be empty"
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Sprintf("%q is not a valid header name", name)
		}
	}
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(name, "_"):
		// The proxy drops names with underscores (some backends read them
		// as dashes, which would let clients forge headers).
		return fmt.Sprintf("header %q contains an underscore; such headers are removed before the request goes upstream", name)
	case strings.HasPrefix(lower, "x-consumer-"), strings.HasPrefix(lower, "x-authenticated-"):
		return fmt.Sprintf("header %q is reserved: X-Consumer-* and X-Authenticated-* are set by the gateway only", name)
	case lower == "authorization" || lower == "host":
		return fmt.Sprintf("header %q cannot carry a claim", name)
	}
	return ""
}

// isTokenChar reports whether c may appear in a header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// cacheTTL and negativeTTL are the TTLs in force.
func (s *Settings) cacheTTL() time.Duration    { return ttl(s.CacheTTL, defaultCacheTTL) }
func (s *Settings) negativeTTL() time.Duration { return ttl(s.NegativeCacheTTL, defaultNegativeTTL) }

func ttl(d *config.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.D()
}
