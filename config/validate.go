package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Validate checks the meaning of the configuration and returns every problem
// found, each with the path of the value concerned. It expects ApplyDefaults
// to have run: zero durations and thresholds mean "use the default" there,
// so Validate only refuses values that no default could explain.
func (c *Config) Validate() []FieldError {
	v := &validator{cfg: c}
	v.server()
	v.admin()
	v.backends()
	v.services()
	v.routes()
	v.consumers()
	v.plans()
	v.policies("policies", c.Policies)
	return v.errs
}

type validator struct {
	cfg  *Config
	errs []FieldError
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// uniqueNames reports empty and repeated names in a list.
func (v *validator) uniqueNames(list string, names []string, what string) map[string]bool {
	seen := make(map[string]int, len(names))
	for i, name := range names {
		p := fmt.Sprintf("%s[%d].name", list, i)
		if strings.TrimSpace(name) == "" {
			v.add(p, "%s needs a name", what)
			continue
		}
		if first, dup := seen[name]; dup {
			v.add(p, "duplicate %s name %q (also %s[%d])", what, name, list, first)
			continue
		}
		seen[name] = i
	}
	set := make(map[string]bool, len(seen))
	for name := range seen {
		set[name] = true
	}
	return set
}

func (v *validator) server() {
	s := v.cfg.Server
	v.listen("server.proxy_listen", s.ProxyListen)
	v.listen("server.admin_listen", s.AdminListen)
	if s.TLS != nil {
		v.listen("server.tls.listen", s.TLS.Listen)
		if len(s.TLS.Certificates) == 0 && s.TLS.ACME == nil {
			v.add("server.tls.certificates", "tls needs at least one certificate (or acme)")
		}
		if s.TLS.ACME != nil {
			v.acme("server.tls.acme", s.TLS.ACME)
		}
		for i, cert := range s.TLS.Certificates {
			p := fmt.Sprintf("server.tls.certificates[%d]", i)
			if cert.Cert == "" {
				v.add(p+".cert", "certificate file is required")
			}
			if cert.Key == "" {
				v.add(p+".key", "key file is required")
			}
		}
	}
	for i, tp := range s.TrustedProxies {
		if !validIPOrCIDR(tp) {
			v.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is neither an IP address nor a CIDR range", tp)
		}
	}
	l := s.Limits
	if l.MaxHeaderBytes < 0 {
		v.add("server.limits.max_header_bytes", "must not be negative")
	}
	if l.MaxBodyBytes < 0 {
		v.add("server.limits.max_body_bytes", "must not be negative")
	}
	if l.MaxURIBytes < 0 {
		v.add("server.limits.max_uri_bytes", "must not be negative")
	}
	if l.MaxConcurrentRequests < 0 {
		v.add("server.limits.max_concurrent_requests", "must not be negative (0 means unlimited)")
	}
	v.nonNegative("server.read_header_timeout", s.ReadHeaderTimeout)
	v.nonNegative("server.idle_timeout", s.IdleTimeout)
	v.nonNegative("server.drain_timeout", s.DrainTimeout)

	v.listen("cluster.listen", v.cfg.Cluster.Listen)
	v.cluster()
	if f := v.cfg.Logging.Format; f != "json" {
		v.add("logging.format", "unknown log format %q (supported: json)", f)
	}
	if r := v.cfg.Tracing.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		v.add("tracing.sample_ratio", "must be between 0 and 1, got %g", *r)
	}
}

func (v *validator) cluster() {
	c := v.cfg.Cluster
	if cp := c.ControlPlane; cp != "" {
		if u, err := url.Parse(cp); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("cluster.control_plane", "%q is not an http:// or https:// URL", cp)
		}
	}
	if t := c.TLS; t != nil {
		if t.Cert == "" {
			v.add("cluster.tls.cert", "certificate file is required")
		}
		if t.Key == "" {
			v.add("cluster.tls.key", "key file is required")
		}
	}
	if c.Cert != "" && c.Key == "" {
		v.add("cluster.cert", "a client certificate needs its key (cluster.key)")
	}
	if c.Key != "" && c.Cert == "" {
		v.add("cluster.key", "a client key needs its certificate (cluster.cert)")
	}
}

func (v *validator) listen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "%q is not a host:port address (e.g. \":8000\" or \"127.0.0.1:8001\")", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "%q has an invalid port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		v.add(path, "%q has an invalid host", addr)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "must not be negative")
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration")
	}
}

func validIPOrCIDR(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}

func (v *validator) admin() {
	tokens := v.cfg.Admin.Tokens
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Name
		p := fmt.Sprintf("admin.tokens[%d]", i)
		if t.Token == "" {
			v.add(p+".token", "token must not be empty")
		}
		if t.Role != "admin" && t.Role != "viewer" {
			v.add(p+".role", "role must be admin or viewer, got %q", t.Role)
		}
	}
	v.uniqueNames("admin.tokens", names, "admin token")
}

func (v *validator) backends() {
	switch scheme, _, _ := strings.Cut(v.cfg.Store, "://"); scheme {
	case "sqlite", "postgres", "postgresql", "memory":
		if !strings.Contains(v.cfg.Store, "://") {
			v.add("store", "%q is not a store URL (sqlite://FILE, postgres://..., memory://)", v.cfg.Store)
		}
	default:
		v.add("store", "unsupported store %q (use sqlite://FILE, postgres://... or memory://)", v.cfg.Store)
	}
	if r := v.cfg.Redis; r != "" {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			v.add("redis", "%q is not a redis:// or rediss:// URL", r)
		}
	}
}

// validHostname accepts DNS names made of letters, digits and hyphens
// (underscores too, as some internal names use them).
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	h = strings.TrimSuffix(h, ".")
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validToken reports whether s is an HTTP token (RFC 9110), as used by
// method and header names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
