package cache

import (
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Defaults of the settings.
const (
	DefaultTTL          = time.Minute
	DefaultMaxBodyBytes = 1 << 20
	DefaultMemoryBytes  = 64 << 20
	DefaultLockTimeout  = 10 * time.Second
	DefaultKeyPrefix    = "tollgate:cache:"
)

// Bounds that keep a typing mistake from becoming a setting.
const (
	maxBodyCeiling   = 64 << 20
	memoryCeiling    = 1 << 40
	lockTimeoutLimit = 5 * time.Minute
)

// DefaultMethods are the methods whose responses are cached when the
// settings name none; HEAD is answered from GET's entries.
var DefaultMethods = []string{"GET", "HEAD"}

// Settings are the policy's settings.
type Settings struct {
	// TTL is how long a response stays fresh when it says nothing itself
	// (no s-maxage, max-age or Expires). Unset: DefaultTTL; 0: only
	// responses that give their own freshness are stored.
	TTL *config.Duration `yaml:"ttl"`
	// Methods are the request methods answered from the cache: GET, and
	// HEAD (from GET's entries).
	Methods []string `yaml:"methods"`
	// Vary names request headers every response of the route varies on,
	// as if the upstream's Vary named them: their values are part of the
	// key, and the response's Vary says so to caches further down.
	Vary []string `yaml:"vary"`
	// KeyHeaders names request headers whose values are part of the key
	// without being announced in Vary (a tenant header, say).
	KeyHeaders []string `yaml:"key_headers"`
	// KeyConsumer makes the authenticated consumer part of the key: each
	// consumer gets answers stored for it alone.
	KeyConsumer bool `yaml:"key_consumer"`
	// CachePrivate stores responses marked Cache-Control: private too
	// (a gateway in front of a single user's backend).
	CachePrivate bool `yaml:"cache_private"`
	// MaxBodyBytes is the largest body stored; larger (and unannounced)
	// bodies stream to the client as always. Unset: DefaultMaxBodyBytes.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MemoryBytes bounds the route's in-memory cache (keys, headers and
	// bodies). Unset: DefaultMemoryBytes.
	MemoryBytes int64 `yaml:"memory_bytes"`
	// Redis keeps the cache in the configuration's Redis, shared by every
	// gateway using it, with the memory cache in front. Unset: true when
	// the configuration sets redis.
	Redis *bool `yaml:"redis"`
	// KeyPrefix starts every Redis key (and the purge channel).
	KeyPrefix string `yaml:"key_prefix"`
	// LockTimeout is how long requests for a resource being fetched wait
	// for that fetch to be stored before going upstream themselves. Unset:
	// DefaultLockTimeout; 0: no waiting, every miss goes upstream.
	LockTimeout *config.Duration `yaml:"lock_timeout"`
}

// Validate reports every setting the policy cannot work with.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Methods != nil && len(s.Methods) == 0 {
		add("methods", "must name GET (and HEAD, answered from GET's entries)")
	}
	hasGET, headAt := false, -1
	for i, m := range s.Methods {
		switch m {
		case "GET":
			hasGET = true
		case "HEAD":
			headAt = i
		default:
			add(fmt.Sprintf("methods[%d]", i), "%q: only GET and HEAD responses are cached (methods are upper case)", m)
		}
	}
	if headAt >= 0 && !hasGET {
		add(fmt.Sprintf("methods[%d]", headAt), "HEAD is answered from the entries of GET: list GET too")
	}
	checkNames := func(list string, names []string) {
		for i, n := range names {
			if !isToken(n) {
				add(fmt.Sprintf("%s[%d]", list, i), "%q is not a header name", n)
			}
		}
	}
	checkNames("vary", s.Vary)
	checkNames("key_headers", s.KeyHeaders)
	if s.MaxBodyBytes < 0 || s.MaxBodyBytes > maxBodyCeiling {
		add("max_body_bytes", "must be between 1 and %d bytes, got %d", maxBodyCeiling, s.MaxBodyBytes)
	}
	switch {
	case s.MemoryBytes < 0 || s.MemoryBytes > memoryCeiling:
		add("memory_bytes", "must be between 1 and %d bytes, got %d", int64(memoryCeiling), s.MemoryBytes)
	case s.MemoryBytes > 0 && int64(s.maxBody()) > s.MemoryBytes:
		add("max_body_bytes", "is larger than memory_bytes (%d): no such body could be kept", s.MemoryBytes)
	}
	if d := s.LockTimeout; d != nil && d.D() > lockTimeoutLimit {
		add("lock_timeout", "must be at most %s", lockTimeoutLimit)
	}
	if s.KeyPrefix != "" && strings.ContainsAny(s.KeyPrefix, " \t\r\n") {
		add("key_prefix", "must not contain white space")
	}
	return errs
}

func (s *Settings) maxBody() int {
	if s.MaxBodyBytes == 0 {
		if s.MemoryBytes > 0 {
			return int(min(DefaultMaxBodyBytes, s.MemoryBytes))
		}
		return DefaultMaxBodyBytes
	}
	return s.MaxBodyBytes
}

// withDefaults returns the settings with every default filled in; redis
// is the configuration's Redis URL.
func (s Settings) withDefaults(redis string) Settings {
	if s.TTL == nil {
		d := config.Duration(DefaultTTL)
		s.TTL = &d
	}
	if s.Methods == nil {
		s.Methods = DefaultMethods
	}
	s.MaxBodyBytes = s.maxBody()
	if s.MemoryBytes == 0 {
		s.MemoryBytes = DefaultMemoryBytes
	}
	if s.Redis == nil {
		on := redis != ""
		s.Redis = &on
	}
	if s.KeyPrefix == "" {
		s.KeyPrefix = DefaultKeyPrefix
	}
	if s.LockTimeout == nil {
		d := config.Duration(DefaultLockTimeout)
		s.LockTimeout = &d
	}
	return s
}

// keyNames are the request headers every key includes: vary and
// key_headers, canonical, sorted, once each.
func (s *Settings) keyNames() []string {
	return canonicalNames(append(slices.Clone(s.Vary), s.KeyHeaders...))
}

// key identifies the cache these settings make, within a route.
func (s *Settings) key() string {
	return fmt.Sprintf("%s/%v/%v/%v/%v/%v/%d/%d/%v/%s/%s", s.TTL, s.Methods, s.Vary, s.KeyHeaders,
		s.KeyConsumer, s.CachePrivate, s.MaxBodyBytes, s.MemoryBytes, *s.Redis, s.KeyPrefix, s.LockTimeout)
}

// canonicalNames returns header names in canonical form, sorted, once each.
func canonicalNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, textproto.CanonicalMIMEHeaderKey(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 && c != '*':
		default:
			return false
		}
	}
	return true
}
