// Package iprestriction is the ip-restriction policy: it admits or refuses a
// request by the client's address, before any credential is looked at.
//
// The address is the one the engine settled on (Exchange.ClientIP): the TCP
// peer, or the X-Forwarded-For entry a trusted proxy vouches for, so a
// client cannot talk its way into an allow list with a forged header.
//
// The lists are compiled into sorted, merged address ranges, one table per
// address family (rangeset.go). A lookup is a binary search over plain
// integers: ten thousand entries cost a few more comparisons than ten, and
// nothing is allocated per request. Deny wins over allow; a non-empty allow
// list refuses every address it does not cover.
//
// IPv4 clients are matched by IPv4 entries, which may also be written
// IPv4-mapped ("::ffff:10.0.0.0/104"); an IPv6 range such as "::/0" never
// covers an IPv4 client, so that "deny all IPv6" does not lock out IPv4.
package iprestriction

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "ip-restriction"

func init() {
	policy.Register(Name, policy.Identify, build)
}

// Settings are the policy's settings: addresses or CIDR ranges.
type Settings struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Validate reports entries that are not addresses or ranges, by index.
func (s *Settings) Validate() []config.FieldError {
	if len(s.Allow) == 0 && len(s.Deny) == 0 {
		return []config.FieldError{{Msg: "at least one of allow or deny is required"}}
	}
	var errs []config.FieldError
	check := func(list string, entries []string) {
		for i, e := range entries {
			if _, err := ParseEntry(e); err != nil {
				errs = append(errs, config.FieldError{Path: fmt.Sprintf("%s[%d]", list, i), Msg: err.Error()})
			}
		}
	}
	check("allow", s.Allow)
	check("deny", s.Deny)
	return errs
}

// ParseEntry reads an address (a /32 or /128 range) or a CIDR range. Host
// bits are ignored ("10.1.2.3/8" is 10.0.0.0/8); IPv4-mapped IPv6 entries of
// /96 or narrower become the IPv4 range they map.
func ParseEntry(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR range", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR range", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone, which means nothing beyond this host", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func build(s *Settings, _ *policy.Build) (any, error) {
	allow, err := parseAll(s.Allow)
	if err != nil {
		return nil, err
	}
	deny, err := parseAll(s.Deny)
	if err != nil {
		return nil, err
	}
	return &restriction{allow: NewSet(allow), deny: NewSet(deny), allowListed: len(allow) > 0}, nil
}

func parseAll(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		p, err := ParseEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// errForbidden is the one answer to a refused address.
var errForbidden = &policy.Reject{Status: 403, Code: "ip_forbidden", Message: "your IP address is not allowed"}

type restriction struct {
	allow, deny *Set
	// allowListed: an allow list was given, so what it misses is refused.
	allowListed bool
}

func (r *restriction) Handle(x *policy.Exchange) *policy.Reject {
	ip := x.ClientIP().Unmap()
	if r.deny.Contains(ip) || (r.allowListed && !r.allow.Contains(ip)) {
		return errForbidden
	}
	return nil
}
