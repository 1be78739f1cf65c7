package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/tollgate/tollgate/config"
)

// Certificates holds the TLS certificates of the proxy listener, chosen by
// SNI. It is swapped whole on a configuration reload, so new handshakes use
// new certificates without a restart while established connections go on.
type Certificates struct {
	current atomic.Pointer[certSet]
}

type certSet struct {
	byName   map[string]*tls.Certificate // exact DNS names, lowercase
	wildcard map[string]*tls.Certificate // "*.example.com" stored as "example.com"
	fallback *tls.Certificate            // the first configured certificate
	clientCA *x509.CertPool
}

// LoadCertificates reads the certificate files of cfg. Relative paths are
// taken from baseDir (the configuration file's directory).
func LoadCertificates(cfg *config.TLS, baseDir string) (*Certificates, error) {
	c := &Certificates{}
	if err := c.Reload(cfg, baseDir); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the certificates in use stay.
func (c *Certificates) Reload(cfg *config.TLS, baseDir string) error {
	set := &certSet{byName: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	var errs []error
	for i, cc := range cfg.Certificates {
		pair, err := tls.LoadX509KeyPair(resolve(baseDir, cc.Cert), resolve(baseDir, cc.Key))
		if err != nil {
			errs = append(errs, fmt.Errorf("server.tls.certificates[%d]: %w", i, err))
			continue
		}
		leaf := pair.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				errs = append(errs, fmt.Errorf("server.tls.certificates[%d]: %w", i, err))
				continue
			}
			pair.Leaf = leaf
		}
		cert := &pair
		if set.fallback == nil {
			set.fallback = cert
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if suffix, ok := strings.CutPrefix(n, "*."); ok {
				if _, dup := set.wildcard[suffix]; !dup {
					set.wildcard[suffix] = cert
				}
			} else if _, dup := set.byName[n]; !dup {
				set.byName[n] = cert
			}
		}
	}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(resolve(baseDir, cfg.ClientCA))
		if err != nil {
			errs = append(errs, fmt.Errorf("server.tls.client_ca: %w", err))
		} else {
			set.clientCA = x509.NewCertPool()
			if !set.clientCA.AppendCertsFromPEM(pem) {
				errs = append(errs, errors.New("server.tls.client_ca: no PEM certificate found"))
			}
		}
	}
	if set.fallback == nil && len(errs) == 0 && cfg.ACME == nil { // else ACME provides them
		errs = append(errs, errors.New("server.tls.certificates: at least one certificate is needed"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	c.current.Store(set)
	return nil
}

func resolve(baseDir, path string) string {
	if filepath.IsAbs(path) || baseDir == "" {
		return path
	}
	return filepath.Join(baseDir, path)
}

// GetCertificate picks the certificate for the SNI name: an exact name, then
// a matching wildcard, then the first configured certificate.
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := c.current.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if cert := set.byName[name]; cert != nil {
		return cert, nil
	}
	// A wildcard stands for exactly one label (RFC 6125), as clients check.
	if i := strings.IndexByte(name, '.'); i > 0 {
		if cert := set.wildcard[name[i+1:]]; cert != nil {
			return cert, nil
		}
	}
	return set.fallback, nil
}

// ServerConfig returns the tls.Config of the proxy listener: TLS 1.2 at
// least, certificates by SNI, and, when client_ca is set, client
// certificates verified against it when offered (a policy decides whether
// one is required).
func (c *Certificates) ServerConfig(nextProtos ...string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
		NextProtos:     nextProtos,
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		set := c.current.Load()
		if set.clientCA == nil {
			return nil, nil
		}
		per := cfg.Clone()
		per.GetConfigForClient = nil
		per.ClientCAs = set.clientCA
		per.ClientAuth = tls.VerifyClientCertIfGiven
		return per, nil
	}
	return cfg
}

// ListenTLS binds addr for TLS with cfg (see Certificates.ServerConfig).
func (s *Server) ListenTLS(addr string, cfg *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.bind(tls.NewListener(ln, cfg))
	return nil
}
