// Package mtlsauth is the mtls-auth policy: it identifies the consumer by
// the client certificate of the TLS connection.
//
// The TLS listener asks for a client certificate when server.tls.client_ca
// is set and verifies any certificate offered against it: one that does not
// verify ends the handshake, so this policy only ever sees verified chains
// (policy.Exchange.PeerCertificates). The listener does not require a
// certificate; this policy decides, per route, that a request without one
// is not authenticated by it.
//
// The leaf certificate is matched against the consumers' credentials.mtls
// entries: subject_cn against the subject's common name, san against the
// certificate's DNS names (without regard to case), email addresses and URIs
// (SPIFFE IDs, for instance), exactly. The index of those credentials is
// built once per configuration snapshot and shared by every route. A
// credential claimed by two consumers is refused when the snapshot is built,
// and a certificate whose names point at two different consumers is refused
// per request: an ambiguous identity is never resolved by guessing.
package mtlsauth
