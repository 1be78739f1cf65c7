package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"github.com/tollgate/tollgate/config"
	"go.uber.org/zap"
)

// ACME obtains and renews the TLS listener's certificates for the domains of
// server.tls.acme from an ACME CA (Let's Encrypt unless another is named),
// with certmagic. Accounts, keys and certificates are kept in a storage
// directory, so a restart serves the certificates it has and renews them
// when due (about a third of their lifetime before expiry).
//
// The CA checks control of a domain with the TLS-ALPN-01 challenge,
// answered by the TLS listener itself: TLSConfig adds the "acme-tls/1"
// protocol and hands challenge handshakes to certmagic. So the domains must
// reach server.tls.listen on port 443. The HTTP-01 challenge is not used.
type ACME struct {
	domains []string
	managed map[string]bool
	storage string
	issuer  certmagic.ACMEIssuer // template; the challenge port is set by Start
	log     *slog.Logger

	magic  atomic.Pointer[certmagic.Config] // set by Start
	mu     sync.Mutex
	cache  *certmagic.Cache
	cancel context.CancelFunc
}

const acmeTLSProtocol = "acme-tls/1" // RFC 8737

var errACMENotStarted = errors.New("acme: certificates not managed yet")

// NewACME prepares the certificate source of s (nil when s is nil); it
// contacts no one until Start. Relative file names start from baseDir.
func NewACME(s *config.ACME, baseDir string, log *slog.Logger) (*ACME, error) {
	if s == nil {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	a := &ACME{managed: make(map[string]bool), log: log}
	for _, d := range s.Domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		a.domains = append(a.domains, d)
		a.managed[d] = true
	}
	if len(a.domains) == 0 {
		return nil, errors.New("server.tls.acme.domains: at least one domain is needed")
	}
	storage := s.Storage
	if storage == "" {
		storage = "acme"
	}
	a.storage = resolve(baseDir, storage)
	ca := s.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	a.issuer = certmagic.ACMEIssuer{
		CA:                   ca,
		Email:                s.Email,
		Agreed:               true,
		DisableHTTPChallenge: true, // the clear listener does not answer it
		Logger:               zap.NewNop(),
	}
	if s.CARoot != "" {
		pem, err := os.ReadFile(resolve(baseDir, s.CARoot))
		if err != nil {
			return nil, fmt.Errorf("server.tls.acme.ca_root: %w", err)
		}
		a.issuer.TrustedRoots = x509.NewCertPool()
		if !a.issuer.TrustedRoots.AppendCertsFromPEM(pem) {
			return nil, errors.New("server.tls.acme.ca_root: no PEM certificate found")
		}
	}
	return a, nil
}

// Start begins managing the certificates: those in storage are served at
// once, missing or expiring ones are obtained in the background (failures
// are logged and retried with backoff). tlsAddr is the bound TLS listener,
// which answers the CA's challenges. A nil ACME does nothing.
func (a *ACME) Start(tlsAddr net.Addr) error {
	if a == nil {
		return nil
	}
	host, portText, err := net.SplitHostPort(tlsAddr.String())
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	port, _ := strconv.Atoi(portText)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return errors.New("acme: already started")
	}
	var magic *certmagic.Config
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	magic = certmagic.New(a.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: a.storage},
		DefaultServerName: a.domains[0],
		OnEvent:           a.onEvent,
		Logger:            zap.NewNop(),
	})
	issuer := a.issuer
	// The challenge "server" is the TLS listener: certmagic finds the port
	// taken and leaves the answers to GetCertificate.
	issuer.ListenHost, issuer.AltTLSALPNPort = host, port
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, issuer)}
	ctx, cancel := context.WithCancel(context.Background())
	if err := magic.ManageAsync(ctx, a.domains); err != nil {
		cancel()
		a.cache.Stop()
		return fmt.Errorf("acme: %w", err)
	}
	a.cancel = cancel
	a.magic.Store(magic)
	return nil
}

// Stop ends renewals; certificates obtained so far are still served. A
// nil or stopped ACME does nothing.
func (a *ACME) Stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil && a.cache != nil {
		a.cancel()
		a.cache.Stop()
		a.cache = nil
	}
}

// GetCertificate answers a handshake for a managed domain, or the CA's
// challenge handshake.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	magic := a.magic.Load()
	if magic == nil {
		return nil, errACMENotStarted
	}
	return magic.GetCertificate(hello)
}

// TLSConfig makes cfg (a listener configuration, such as
// Certificates.ServerConfig returns) serve the managed domains and the CA's
// challenges from ACME, and every other name as before; without other
// certificates, ACME serves every handshake. cfg is changed in place (so
// that configurations it derives per client keep the change) and returned.
// A nil ACME returns cfg unchanged.
func (a *ACME) TLSConfig(cfg *tls.Config) *tls.Config {
	if a == nil {
		return cfg
	}
	static := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if static != nil && !a.answers(hello) {
			if cert, err := static(hello); cert != nil || err != nil {
				return cert, err
			}
		}
		return a.GetCertificate(hello)
	}
	if !slices.Contains(cfg.NextProtos, acmeTLSProtocol) {
		cfg.NextProtos = append(cfg.NextProtos, acmeTLSProtocol)
	}
	return cfg
}

func (a *ACME) answers(hello *tls.ClientHelloInfo) bool {
	return a.managed[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))] ||
		slices.Contains(hello.SupportedProtos, acmeTLSProtocol)
}

// onEvent logs what certmagic does with the certificates.
func (a *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	var level slog.Level
	switch event {
	case "cert_obtaining", "cert_obtained":
		level = slog.LevelInfo
	case "cert_failed", "cert_ocsp_revoked":
		level = slog.LevelError
	default:
		return nil
	}
	attrs := make([]any, 0, 2*len(data))
	for k, v := range data {
		attrs = append(attrs, k, v)
	}
	a.log.Log(context.Background(), level, "acme "+strings.ReplaceAll(event, "_", " "), attrs...)
	return nil
}
