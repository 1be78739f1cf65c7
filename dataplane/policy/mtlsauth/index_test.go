package mtlsauth

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// TestIndexMatchesEverySANKind covers the SAN kinds the test CA cannot
// issue (email, URI), on certificates as crypto/x509 parses them.
func TestIndexMatchesEverySANKind(t *testing.T) {
	dir := policy.NewDirectory([]config.Consumer{
		{Name: "mail", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "ops@example.com"}}}},
		{Name: "spiffe", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "spiffe://example.org/ns/prod/sa/billing"}}}},
		{Name: "dns", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "Host.Example.com"}}}},
		{Name: "cn", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SubjectCN: "Device 7"}}}},
	})
	ix, err := newIndex(dir.All())
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://example.org/ns/prod/sa/billing")
	other, _ := url.Parse("spiffe://example.org/ns/prod/sa/Billing")
	cases := []struct {
		name      string
		cert      x509.Certificate
		want      string
		ambiguous bool
	}{
		{"email", x509.Certificate{EmailAddresses: []string{"x@example.com", "ops@example.com"}}, "mail", false},
		{"email is exact", x509.Certificate{EmailAddresses: []string{"OPS@example.com"}}, "", false},
		{"URI", x509.Certificate{URIs: []*url.URL{spiffe}}, "spiffe", false},
		{"URI path is case-sensitive", x509.Certificate{URIs: []*url.URL{other}}, "", false},
		{"DNS ignores case", x509.Certificate{DNSNames: []string{"host.example.COM"}}, "dns", false},
		{"CN is exact", x509.Certificate{Subject: pkix.Name{CommonName: "device 7"}}, "", false},
		{"CN", x509.Certificate{Subject: pkix.Name{CommonName: "Device 7"}}, "cn", false},
		{"two consumers", x509.Certificate{Subject: pkix.Name{CommonName: "Device 7"}, EmailAddresses: []string{"ops@example.com"}}, "", true},
	}
	for _, c := range cases {
		got, ambiguous := ix.match(&c.cert)
		name := ""
		if got != nil && !ambiguous {
			name = got.Name
		}
		if name != c.want || ambiguous != c.ambiguous {
			t.Errorf("%s: got %q ambiguous=%v, want %q ambiguous=%v", c.name, name, ambiguous, c.want, c.ambiguous)
		}
	}
}
