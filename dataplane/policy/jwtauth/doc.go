// Package jwtauth is the jwt policy: it authenticates requests carrying a
// JSON Web Token (a compact JWS) in the Authorization header's Bearer
// scheme, another header, a query parameter or a cookie.
//
// Keys come from two places. Consumers' credentials.jwt entries give an
// HMAC secret or a PEM public key for an issuer: a token's iss picks them.
// A jwks_url gives the identity provider's public keys: a token's kid picks
// one. Every key is parsed once, into the typed key its algorithm family
// needs ([]byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey), and
// a token's alg must be one its key allows: an RSA public key can never be
// used as an HMAC secret, and "none" is not an algorithm here at all.
//
// The JWKS lives in the policy State under its URL, so a reload keeps it
// and routes naming one URL share it. It is fetched in the background when
// first built and every jwks_refresh; an unknown kid fetches it again, but
// at most once per jwks_min_refetch_interval, with concurrent requests
// waiting for the one fetch in flight: made-up kids cannot hammer the
// identity provider.
//
// The hot path avoids the allocations of a general JWT library: the token
// is split and base64-decoded into pooled buffers, its header and claims
// are checked with json.Valid and walked in place (only the claims the
// policy reads are converted), and the signature is checked by jwx's
// low-level jwsbb functions on the pre-parsed key. A verified token is
// then remembered, by its SHA-256, for at most a minute (less when it
// expires sooner), since clients send the same token many times and
// checking an RSA or ECDSA signature costs far more than a lookup.
//
// A token that verifies but names no known consumer is refused, as Kong's
// jwt plugin refuses one whose iss matches no credential: the consumer is
// what quotas, plans and ACLs hang on. With the policy's anonymous setting
// such a request goes on as the anonymous consumer instead, as any failed
// authentication does.
package jwtauth
