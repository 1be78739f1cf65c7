package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
)

// acme checks server.tls.acme: domains a CA can issue for with the
// TLS-ALPN challenge, an email address and a CA URL that parse.
func (v *validator) acme(p string, a *ACME) {
	if len(a.Domains) == 0 {
		v.add(p+".domains", "acme needs at least one domain")
	}
	seen := make(map[string]bool, len(a.Domains))
	for i, d := range a.Domains {
		dp := fmt.Sprintf("%s.domains[%d]", p, i)
		name := strings.ToLower(d)
		switch {
		case strings.HasPrefix(d, "*."):
			v.add(dp, "wildcard certificates need the DNS challenge, which is not supported: list the names")
		case net.ParseIP(d) != nil || !validHostname(d) || !strings.Contains(strings.TrimSuffix(d, "."), "."):
			v.add(dp, "%q is not a domain name a CA issues certificates for", d)
		case seen[name]:
			v.add(dp, "duplicate domain %q", d)
		}
		seen[name] = true
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			v.add(p+".email", "invalid email address %q", a.Email)
		}
	}
	if a.CA != "" {
		if u, err := url.Parse(a.CA); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.add(p+".ca", "ca must be the URL of an ACME directory, got %q", a.CA)
		}
	}
}
