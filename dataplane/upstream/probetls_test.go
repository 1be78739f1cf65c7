package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/testutil"
)

// TestProbeTLSSurvivesAnUnchangedReload: every reload builds new TLS
// configurations; one that verifies the same way keeps the running checker,
// another CA restarts it.
func TestProbeTLSSurvivesAnUnchangedReload(t *testing.T) {
	first, second := testutil.NewCA(t), testutil.NewCA(t)
	pools := map[string]*x509.CertPool{}
	r := newRegistry(t, RegistryOptions{ClientTLS: func(s *config.UpstreamTLS, addr string) (*tls.Config, error) {
		roots := x509.NewCertPool() // a new pool each time, as from a CA file
		if s.CA == "first" {
			roots.AddCert(first.Cert)
		} else {
			roots.AddCert(second.Cert)
		}
		pools[s.CA] = roots
		return &tls.Config{RootCAs: roots, ServerName: "backend.test", MinVersion: tls.VersionTLS12}, nil
	}})
	service := func(ca string) config.Service {
		s := activeSvc("s", "https://"+testutil.ClosedPort(t))
		s.TLS = &config.UpstreamTLS{CA: ca}
		return s
	}
	checkerOf := func(p *Pool) *checker {
		r.mu.Lock()
		defer r.mu.Unlock()
		return p.targets[0].state.checker
	}
	s := service("first")
	p1 := mustPool(t, r, s)
	c1 := checkerOf(p1)
	p2 := mustPool(t, r, s)
	if c := checkerOf(p2); c != c1 {
		t.Fatal("an unchanged reload restarted the checker")
	}
	s.TLS.CA = "second"
	p3 := mustPool(t, r, s)
	if c := checkerOf(p3); c == c1 || c.probe.tls.RootCAs != pools["second"] {
		t.Fatal("a reload with another CA kept the old checker")
	}
	p1.Release()
	p2.Release()
	p3.Release()
}
