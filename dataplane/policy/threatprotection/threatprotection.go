package threatprotection

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/tollgate/tollgate/dataplane/policy/threatprotection/jsonscan"
)

// Name is the policy's name in configurations.
const Name = "threat-protection"

// Defaults of the settings left out (or zero).
const (
	DefaultMaxJSONDepth        = 32
	DefaultMaxJSONKeys         = 1000
	DefaultMaxJSONArrayItems   = 10000
	DefaultMaxJSONStringLength = 65536
	DefaultMaxBodyBytes        = 1 << 20
	DefaultBanFor              = 10 * time.Minute
	DefaultBanWindow           = time.Minute
)

// Bounds on settings, past which the policy would cost more than it saves.
const (
	maxBodyBytesLimit = 64 << 20
	maxBanAfter       = 100
)

// Settings are the policy's settings.
type Settings struct {
	// MaxJSONDepth is the deepest nesting of objects and arrays.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// MaxJSONKeys is the most members one object may have.
	MaxJSONKeys int `yaml:"max_json_keys"`
	// MaxJSONArrayItems is the most items one array may have.
	MaxJSONArrayItems int `yaml:"max_json_array_items"`
	// MaxJSONStringLength is the longest string (keys too), in bytes.
	MaxJSONStringLength int `yaml:"max_json_string_length"`
	// MaxBodyBytes is the largest JSON body read for inspection; a larger
	// one is refused with 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// BanAfterAuthFailures bans a client address after this many refused
	// credentials within BanWindow; 0 bans nobody.
	BanAfterAuthFailures int             `yaml:"ban_after_auth_failures"`
	BanFor               config.Duration `yaml:"ban_for"`
	BanWindow            config.Duration `yaml:"ban_window"`
}

// Validate reports settings out of range.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	for _, f := range []struct {
		path string
		v    int
	}{
		{"max_json_depth", s.MaxJSONDepth},
		{"max_json_keys", s.MaxJSONKeys},
		{"max_json_array_items", s.MaxJSONArrayItems},
		{"max_json_string_length", s.MaxJSONStringLength},
		{"max_body_bytes", s.MaxBodyBytes},
		{"ban_after_auth_failures", s.BanAfterAuthFailures},
	} {
		if f.v < 0 {
			errs = append(errs, config.FieldError{Path: f.path, Msg: "must not be negative (0 or absent: the default)"})
		}
	}
	if s.MaxBodyBytes > maxBodyBytesLimit {
		errs = append(errs, config.FieldError{Path: "max_body_bytes",
			Msg: fmt.Sprintf("must be at most %d (64 MiB): bodies are held in memory to be inspected", maxBodyBytesLimit)})
	}
	if s.BanAfterAuthFailures > maxBanAfter {
		errs = append(errs, config.FieldError{Path: "ban_after_auth_failures", Msg: fmt.Sprintf("must be at most %d", maxBanAfter)})
	}
	return errs
}

// withDefaults fills in the settings left out.
func (s Settings) withDefaults() Settings {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.MaxJSONDepth, DefaultMaxJSONDepth)
	def(&s.MaxJSONKeys, DefaultMaxJSONKeys)
	def(&s.MaxJSONArrayItems, DefaultMaxJSONArrayItems)
	def(&s.MaxJSONStringLength, DefaultMaxJSONStringLength)
	def(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	s.BanFor = config.Duration(s.BanFor.Or(DefaultBanFor))
	s.BanWindow = config.Duration(s.BanWindow.Or(DefaultBanWindow))
	return s
}

func init() {
	policy.Register(Name, policy.Identify, build)
}

// clock is the time bans are counted in; tests replace it.
var clock atomic.Pointer[func() time.Time]

func now() func() time.Time {
	if f := clock.Load(); f != nil {
		return *f
	}
	return time.Now
}

func build(raw *Settings, b *policy.Build) (any, error) {
	s := raw.withDefaults()
	g := &guard{
		limits: jsonscan.Limits{
			Depth: s.MaxJSONDepth, Keys: s.MaxJSONKeys,
			ArrayItems: s.MaxJSONArrayItems, StringLength: s.MaxJSONStringLength,
		},
		maxBody: s.MaxBodyBytes,
	}
	g.rejects[jsonscan.Invalid] = errInvalidJSON
	g.rejects[jsonscan.TooDeep] = threat("nesting deeper than max_json_depth (%d)", s.MaxJSONDepth)
	g.rejects[jsonscan.TooManyKeys] = threat("an object with more keys than max_json_keys (%d)", s.MaxJSONKeys)
	g.rejects[jsonscan.TooManyItems] = threat("an array with more items than max_json_array_items (%d)", s.MaxJSONArrayItems)
	g.rejects[jsonscan.StringTooLong] = threat("a string longer than max_json_string_length (%d bytes)", s.MaxJSONStringLength)
	if s.BanAfterAuthFailures > 0 {
		// One table for every route whose bans are set alike: a global
		// threat-protection bans an address on all routes at once, and a
		// route that only changes JSON limits still shares it.
		key := fmt.Sprintf("%s/bans after=%d window=%s for=%s", Name, s.BanAfterAuthFailures, s.BanWindow, s.BanFor)
		var m *banMetrics
		if b.Metrics != nil {
			m = metricsFor(b.Metrics.Registry())
		} else {
			m = metricsFor(nil)
		}
		g.bans = b.State.Get(key, func() any {
			return newBanTable(s.BanAfterAuthFailures, s.BanWindow.D(), s.BanFor.D(), now(), tableCapacity(s.BanAfterAuthFailures), m)
		}).(*banTable)
	}
	return g, nil
}

func threat(format string, limit int) *policy.Reject {
	return &policy.Reject{Status: 400, Code: "threat_detected", Message: "request JSON has " + fmt.Sprintf(format, limit)}
}

var (
	errInvalidJSON = &policy.Reject{Status: 400, Code: "invalid_json", Message: "request body is not valid JSON"}
	errEncoded     = &policy.Reject{Status: 415, Code: "unsupported_encoding",
		Message: "a compressed JSON body cannot be inspected; send it uncompressed", Close: true}
	errBanned = &policy.Reject{Status: 403, Code: "banned",
		Message: "too many failed authentication attempts from this address; try again later"}
)

// guard is the policy on one route.
type guard struct {
	limits  jsonscan.Limits
	maxBody int
	rejects [jsonscan.StringTooLong + 1]*policy.Reject
	bans    *banTable // nil when nobody is banned
}

// Handle refuses a banned client first, then a JSON body out of bounds.
func (g *guard) Handle(x *policy.Exchange) *policy.Reject {
	if g.bans != nil {
		if left, banned := g.bans.bannedFor(x.ClientIP()); banned {
			var buf [20]byte
			secs := int64((left + time.Second - 1) / time.Second)
			x.SetAnswerHeaderBytes("Retry-After", strconv.AppendInt(buf[:0], secs, 10))
			return errBanned
		}
	}
	if cl := x.ContentLength(); cl == 0 || cl == -2 || !policy.IsJSON(x.Header("Content-Type")) {
		return nil
	}
	if !policy.IdentityEncoded(x.Header("Content-Encoding")) {
		return errEncoded
	}
	body, rej := x.ReadBody(g.maxBody)
	if rej != nil {
		return rej
	}
	if len(body) == 0 {
		return nil
	}
	if p, _ := jsonscan.Scan(body, g.limits); p != jsonscan.OK {
		return g.rejects[p]
	}
	return nil
}

// AuthFailed counts a refused credential against the client's address.
func (g *guard) AuthFailed(x *policy.Exchange) {
	if g.bans != nil {
		g.bans.fail(x.ClientIP())
	}
}

// Finish gives back the memory of a body read for inspection.
func (g *guard) Finish(x *policy.Exchange) { x.ReleaseBody() }
