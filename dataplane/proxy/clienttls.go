package proxy

import (
	"crypto/tls"

	"github.com/tollgate/tollgate/config"
)

// ClientTLS is the TLS configuration this transport's clients use for an
// https target at addr (host:port) of a service with tls settings s (nil:
// defaults): the base TLSConfig, the service's CA read from BaseDir, its
// server name and insecure_skip_verify. Active health checks take it (see
// upstream.RegistryOptions.ClientTLS) so probes verify a target exactly as
// proxied requests do. It fails when the CA file cannot be used.
func (t *Transport) ClientTLS(s *config.UpstreamTLS, addr string) (*tls.Config, error) {
	v, err := t.loadVerification(s)
	if err != nil {
		return nil, err
	}
	return t.tlsConfig(addr, v), nil
}
