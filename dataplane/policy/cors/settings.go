package cors

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
)

// Settings are the policy's settings.
type Settings struct {
	// Origins allowed to call: exact origins ("https://app.example.com"),
	// wildcard subdomains ("https://*.example.com"), "null" or "*".
	// Default "*".
	Origins []string `yaml:"origins"`
	// Methods a preflight may ask for. Default GET, HEAD, PUT, PATCH, POST,
	// DELETE; "*" allows any.
	Methods []string `yaml:"methods"`
	// Headers a request may carry. Empty (or "*"): whatever the preflight
	// asks for.
	Headers []string `yaml:"headers"`
	// ExposedHeaders are the response headers scripts may read beyond the
	// safelisted ones.
	ExposedHeaders []string `yaml:"exposed_headers"`
	// Credentials lets requests carry cookies and Authorization.
	Credentials bool `yaml:"credentials"`
	// MaxAge is how long a browser may keep a preflight's answer.
	MaxAge config.Duration `yaml:"max_age"`
	// PreflightContinue sends preflights on through the route to the
	// upstream instead of answering them at the gateway.
	PreflightContinue bool `yaml:"preflight_continue"`
}

// DefaultMethods are the methods allowed when none are configured.
var DefaultMethods = []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}

// Validate reports every setting a browser could not make sense of.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for i, o := range s.Origins {
		if _, err := parseOrigin(o); err != nil {
			add(fmt.Sprintf("origins[%d]", i), "%v", err)
		}
	}
	for i, m := range s.Methods {
		if m != "*" && !isToken(m) {
			add(fmt.Sprintf("methods[%d]", i), "%q is not an HTTP method", m)
		}
	}
	for i, h := range s.Headers {
		if h != "*" && !isToken(h) {
			add(fmt.Sprintf("headers[%d]", i), "%q is not a header name", h)
		}
	}
	for i, h := range s.ExposedHeaders {
		p := fmt.Sprintf("exposed_headers[%d]", i)
		switch {
		case h == "*" && s.Credentials:
			add(p, `"*" exposes nothing when credentials is true (browsers read it as a header name); list the headers`)
		case h != "*" && !isToken(h):
			add(p, "%q is not a header name", h)
		}
	}
	// A negative duration is refused when it is decoded.
	if d := s.MaxAge.D(); d > 0 && d < time.Second {
		add("max_age", "must be at least 1s: browsers count it in whole seconds")
	}
	return errs
}

// originPattern is one entry of origins.
type originPattern struct {
	any bool // "*"
	// exact is the origin in lower case ("null" included), "" for a
	// wildcard.
	exact string
	// A wildcard "https://*.example.com:8443" matches origins starting
	// with prefix ("https://"), ending with suffix (".example.com:8443"),
	// with one or more host labels in between.
	prefix, suffix string
}

func parseOrigin(s string) (originPattern, error) {
	switch s {
	case "*":
		return originPattern{any: true}, nil
	case "null":
		return originPattern{exact: s}, nil
	}
	bad := fmt.Errorf(`%q is not an origin: write scheme://host[:port] without a path, "*", "null" or a wildcard such as "https://*.example.com"`, s)
	l := strings.ToLower(s) // origins are serialised in lower case
	scheme, host, ok := strings.Cut(l, "://")
	if !ok || !validScheme(scheme) {
		return originPattern{}, bad
	}
	wildcard := strings.HasPrefix(host, "*.")
	if wildcard {
		host = host[2:]
	}
	if strings.Contains(host, "*") {
		return originPattern{}, fmt.Errorf("%q: a wildcard may only stand for the leftmost labels of the host (https://*.example.com)", s)
	}
	if !validHostPort(host) {
		return originPattern{}, bad
	}
	if wildcard {
		if strings.HasPrefix(host, "[") {
			return originPattern{}, fmt.Errorf("%q: a wildcard needs a host name, not an address", s)
		}
		return originPattern{prefix: scheme + "://", suffix: "." + host}, nil
	}
	return originPattern{exact: l}, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validHostPort checks host[:port] as an origin has it: a host name, an
// IPv4 address or a bracketed IPv6 one, and an optional port.
func validHostPort(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host = s[:i]
		n, err := strconv.Atoi(s[i+1:])
		if err != nil || n < 0 || n > 65535 || s[i+1] == '+' || s[i+1] == '-' {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(host[1:], "]"))
		return err == nil && strings.HasSuffix(host, "]") && a.Is6() && a.Zone() == ""
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		if !hostChar(host[i]) {
			return false
		}
	}
	return true
}

func hostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// isToken reports whether s is an HTTP token (a method or header name).
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
