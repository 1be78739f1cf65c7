package ratelimit

import (
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Defaults of the settings.
const (
	DefaultPer          = "consumer"
	DefaultSync         = "strict"
	DefaultSyncInterval = 50 * time.Millisecond
	DefaultRedisTimeout = 100 * time.Millisecond
	DefaultKeyPrefix    = "tollgate:ratelimit:"
)

// Settings are the policy's settings.
type Settings struct {
	// Limit is how many requests a key may make per window.
	Limit int64 `yaml:"limit"`
	// Window is the span the limit counts over.
	Window config.Duration `yaml:"window"`
	// Per names what a key is: consumer (the authenticated consumer, the
	// client address without one), ip, route (one key for the route) or
	// header:NAME (the header's value, the client address without it).
	Per string `yaml:"per"`
	// Sync is how gateways sharing a Redis agree: strict (a Redis call per
	// request) or batched (local decisions, reconciled every SyncInterval).
	Sync string `yaml:"sync"`
	// SyncInterval is how often batched limits reconcile with Redis.
	SyncInterval config.Duration `yaml:"sync_interval"`
	// RedisTimeout bounds each Redis call; past it the decision is local.
	RedisTimeout config.Duration `yaml:"redis_timeout"`
	// KeyPrefix starts every Redis key the policy writes.
	KeyPrefix string `yaml:"key_prefix"`
	// FromPlan takes each consumer's limit from its plan's rate_limit;
	// Limit and Window, when set, apply to the others (no consumer, or a
	// plan without rate_limit), which are otherwise not limited.
	FromPlan bool `yaml:"from_plan"`
}

// maxLimit keeps limit × the emission interval (at least a microsecond)
// far from overflowing.
const maxLimit = 1e12

// per kinds.
const (
	perConsumer = iota
	perIP
	perRoute
	perHeader
)

// parsePer splits per into its kind and, for header:NAME, the header name.
func parsePer(per string) (kind int, header string, ok bool) {
	switch per {
	case "", "consumer":
		return perConsumer, "", true
	case "ip":
		return perIP, "", true
	case "route":
		return perRoute, "", true
	}
	name, found := strings.CutPrefix(per, "header:")
	if !found || !isToken(name) {
		return 0, "", false
	}
	return perHeader, name, true
}

// isToken reports whether s is a valid header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Validate reports every setting the policy cannot work with.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if s.FromPlan && s.Limit == 0 && s.Window == 0 {
		// Only plans' limits: nothing more to check here.
	} else {
		s.validateLimit(add)
	}
	if s.FromPlan && s.Per != "" && s.Per != "consumer" {
		add("per", "from_plan limits per consumer; per must be consumer or left out")
	}
	if _, _, ok := parsePer(s.Per); !ok {
		add("per", "per %q is not consumer, ip, route or header:NAME (NAME a header name)", s.Per)
	}
	switch s.Sync {
	case "", "strict", "batched":
	default:
		add("sync", "sync %q is not strict or batched", s.Sync)
	}
	if d := s.SyncInterval.D(); d != 0 && (d < time.Millisecond || d > time.Minute) {
		add("sync_interval", "sync_interval must be between 1ms and 1m")
	}
	if d := s.RedisTimeout.D(); d != 0 && (d < time.Millisecond || d > 10*time.Second) {
		add("redis_timeout", "redis_timeout must be between 1ms and 10s")
	}
	return errs
}

// validateLimit checks limit and window.
func (s *Settings) validateLimit(add func(path, format string, args ...any)) {
	switch {
	case s.Limit < 1:
		add("limit", "limit must be at least 1 (requests per window)")
	case s.Limit > maxLimit:
		add("limit", "limit must be at most %d", int64(maxLimit))
	}
	switch w := s.Window.D(); {
	case w <= 0:
		add("window", "window is required (e.g. 1s, 1m, 1h)")
	case w < time.Millisecond:
		add("window", "window must be at least 1ms")
	case w > 366*24*time.Hour:
		add("window", "window must be at most a year")
	}
}

// withDefaults returns the settings with every default filled in.
func (s Settings) withDefaults() Settings {
	if s.Per == "" {
		s.Per = DefaultPer
	}
	if s.Sync == "" {
		s.Sync = DefaultSync
	}
	if s.SyncInterval == 0 {
		s.SyncInterval = config.Duration(DefaultSyncInterval)
	}
	if s.RedisTimeout == 0 {
		s.RedisTimeout = config.Duration(DefaultRedisTimeout)
	}
	if s.KeyPrefix == "" {
		s.KeyPrefix = DefaultKeyPrefix
	}
	return s
}
