package deprecation

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Settings are the policy's settings.
type Settings struct {
	// DeprecatedAt is when the route was or will be deprecated: a date
	// (midnight UTC) or an RFC 3339 time. Default: when the gateway first
	// ran the route with this policy.
	DeprecatedAt string `yaml:"deprecated_at"`
	// Sunset is when the route is expected to stop answering, in the same
	// forms.
	Sunset string `yaml:"sunset"`
	// Link is a page about the deprecation (rel="deprecation").
	Link string `yaml:"link"`
	// SunsetLink is a page about the sunset (rel="sunset").
	SunsetLink string `yaml:"sunset_link"`
	// AfterSunset is what happens once the sunset has passed: "continue"
	// (the default: the upstream still answers) or "refuse" (410).
	AfterSunset string `yaml:"after_sunset"`
}

// The after_sunset choices.
const (
	afterContinue = "continue"
	afterRefuse   = "refuse"
)

// Validate reports every setting that cannot be sent as its header.
func (s *Settings) Validate() []config.FieldError {
	_, errs := s.compile()
	return errs
}

// times are the settings' instants, parsed; a zero time was not set.
type times struct {
	deprecatedAt, sunset time.Time
	refuse               bool
}

func (s *Settings) compile() (times, []config.FieldError) {
	var t times
	var errs []config.FieldError
	fail := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	var err error
	if s.DeprecatedAt != "" {
		if t.deprecatedAt, err = parseTime(s.DeprecatedAt); err != nil {
			fail("deprecated_at", "%v", err)
		}
	}
	if s.Sunset != "" {
		if t.sunset, err = parseTime(s.Sunset); err != nil {
			fail("sunset", "%v", err)
		}
	}
	if !t.deprecatedAt.IsZero() && !t.sunset.IsZero() && t.sunset.Before(t.deprecatedAt) {
		fail("sunset", "%s is before deprecated_at %s: a route cannot stop answering before it is deprecated (RFC 9745 section 4)",
			s.Sunset, s.DeprecatedAt)
	}
	if s.Link != "" {
		if err := checkLink(s.Link); err != nil {
			fail("link", "%v", err)
		}
	}
	if s.SunsetLink != "" {
		if err := checkLink(s.SunsetLink); err != nil {
			fail("sunset_link", "%v", err)
		}
	}
	switch s.AfterSunset {
	case "", afterContinue:
	case afterRefuse:
		t.refuse = true
		if s.Sunset == "" {
			fail("after_sunset", "refuse needs a sunset date")
		}
	default:
		fail("after_sunset", "%q is not one of continue, refuse", s.AfterSunset)
	}
	return t, errs
}

// parseTime reads a date (midnight UTC) or an RFC 3339 time, to the second:
// the headers carry whole seconds.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (2027-06-30) nor an RFC 3339 time (2027-06-30T23:59:59Z)", s)
}

// checkLink accepts a URI reference (RFC 3986) that can stand between the
// angle brackets of a Link header: absolute, or relative to the request's
// URI.
func checkLink(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fmt.Errorf("%q: '%%' must start a percent-encoding such as %%20", s)
			}
		case c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0:
			return fmt.Errorf("%q: %q is not allowed in a URI; percent-encode it", s, c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URI: %v", s, err)
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return fmt.Errorf("%q: an %s URI needs a host", s, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%q: a link must not carry user:password, every client would see it", s)
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
