package mtlsauth

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// Name is the policy's name in configurations.
const Name = "mtls-auth"

// Settings are the mtls-auth policy's settings: only anonymous, as the
// certificates' mapping lives with the consumers.
type Settings struct {
	policy.AuthSettings `yaml:",inline"`
}

func init() {
	policy.Register(Name, policy.Authenticate, build)
}

// Refusals that do not vary per request.
var (
	rejectUnknown   = &policy.Reject{Status: 401, Code: "unauthorized", Message: "the client certificate identifies no consumer"}
	rejectAmbiguous = &policy.Reject{Status: 401, Code: "unauthorized", Message: "the client certificate matches several consumers"}
)

// sharedKey names the credential index in policy.Shared.
const sharedKey = Name + "/index"

type instance struct {
	policy.AuthSettings
	index *index
}

func build(s *Settings, b *policy.Build) (any, error) {
	v, err := b.Shared.Get(sharedKey, func() (any, error) { return newIndex(b.Consumers.All()) })
	if err != nil {
		return nil, err
	}
	return &instance{AuthSettings: s.AuthSettings, index: v.(*index)}, nil
}

// Authenticate implements policy.Authenticator.
func (p *instance) Authenticate(x *policy.Exchange) (*policy.Consumer, *policy.Reject) {
	chain := x.PeerCertificates()
	if len(chain) == 0 {
		return nil, nil
	}
	c, ambiguous := p.index.match(chain[0])
	switch {
	case ambiguous:
		return nil, rejectAmbiguous
	case c == nil:
		return nil, rejectUnknown
	}
	x.Credential = Name
	return c, nil
}

// index maps certificate names to the consumers claiming them.
type index struct {
	byCN    map[string]*policy.Consumer
	byDNS   map[string]*policy.Consumer // lower case
	byEmail map[string]*policy.Consumer
	byURI   map[string]*policy.Consumer // as url.URL.String writes them
}

// newIndex indexes the mtls credentials of consumers.
func newIndex(consumers []*policy.Consumer) (*index, error) {
	ix := &index{
		byCN: map[string]*policy.Consumer{}, byDNS: map[string]*policy.Consumer{},
		byEmail: map[string]*policy.Consumer{}, byURI: map[string]*policy.Consumer{},
	}
	claim := func(m map[string]*policy.Consumer, kind, name string, c *policy.Consumer) error {
		if other, ok := m[name]; ok && other != c {
			return fmt.Errorf("consumers %q and %q both claim the client certificate %s %q", other.Name, c.Name, kind, name)
		}
		m[name] = c
		return nil
	}
	for _, c := range consumers {
		for _, cred := range c.Credentials.MTLS {
			if cred.SubjectCN != "" {
				if err := claim(ix.byCN, "subject_cn", cred.SubjectCN, c); err != nil {
					return nil, err
				}
			}
			if cred.SAN != "" {
				m, name := ix.sanMap(cred.SAN)
				if err := claim(m, "san", name, c); err != nil {
					return nil, err
				}
			}
		}
	}
	return ix, nil
}

// sanMap tells the kind of a configured SAN by its shape: a URI has a
// scheme, an email address an @, anything else is a DNS name.
func (ix *index) sanMap(san string) (map[string]*policy.Consumer, string) {
	switch {
	case strings.Contains(san, ":"):
		if u, err := url.Parse(san); err == nil {
			san = u.String()
		}
		return ix.byURI, san
	case strings.Contains(san, "@"):
		return ix.byEmail, san
	}
	return ix.byDNS, dnsKey(san)
}

func dnsKey(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// match returns the consumer cert's names point at. ambiguous is true when
// they point at more than one.
func (ix *index) match(cert *x509.Certificate) (c *policy.Consumer, ambiguous bool) {
	var m matcher
	if cn := cert.Subject.CommonName; cn != "" {
		m.see(ix.byCN[cn])
	}
	if len(ix.byDNS) > 0 {
		for _, n := range cert.DNSNames {
			m.see(ix.byDNS[dnsKey(n)])
		}
	}
	if len(ix.byEmail) > 0 {
		for _, e := range cert.EmailAddresses {
			m.see(ix.byEmail[e])
		}
	}
	if len(ix.byURI) > 0 {
		for _, u := range cert.URIs {
			m.see(ix.byURI[u.String()])
		}
	}
	return m.found, m.ambiguous
}

// matcher collects the consumers a certificate's names point at.
type matcher struct {
	found     *policy.Consumer
	ambiguous bool
}

func (m *matcher) see(c *policy.Consumer) {
	switch {
	case c == nil:
	case m.found == nil:
		m.found = c
	case m.found != c:
		m.ambiguous = true
	}
}
