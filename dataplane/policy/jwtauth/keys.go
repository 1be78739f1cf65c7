package jwtauth

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
)

// verifyKey is a key ready to check signatures: parsed once (from a
// consumer's credential or a JWKS), never per request.
type verifyKey struct {
	kid string
	// algs are the algorithms the key may verify: exactly one for a
	// consumer's credential or a JWK naming its alg, the family of the key
	// type otherwise.
	algs algSet
	// raw is []byte for HMAC, else *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey: the typed value makes alg confusion impossible.
	raw any
	// consumer owns the credential; nil for JWKS keys.
	consumer *policy.Consumer
}

func (k *verifyKey) verify(a algorithm, signingInput, signature []byte) bool {
	return jwsbb.Verify(k.raw, a.String(), signingInput, signature) == nil
}

// importPublicKey parses a PEM public key (or certificate) or a JWK in
// JSON, keeping only its public part.
func importPublicKey(data []byte) (any, error) {
	data = bytes.TrimSpace(data)
	var key jwk.Key
	var err error
	if bytes.HasPrefix(data, []byte("{")) {
		key, err = jwk.ParseKey(data)
	} else {
		key, err = jwk.ParseKey(data, jwk.WithPEM(true))
	}
	if err != nil {
		return nil, err
	}
	return jwk.PublicRawKeyOf(key)
}

// credentials indexes the jwt credentials of every consumer of a snapshot;
// built once and shared by all the snapshot's jwt policies.
type credentials struct {
	byIssuer map[string]*issuer
	byName   map[string]*policy.Consumer
}

// issuer is what the consumers say about one token issuer.
type issuer struct {
	keys []*verifyKey
	// consumers have a credential for this issuer, each once.
	consumers []*policy.Consumer
}

const sharedCredentialsKey = "jwtauth.credentials"

func sharedCredentials(b *policy.Build) (*credentials, error) {
	v, err := b.Shared.Get(sharedCredentialsKey, func() (any, error) {
		return indexCredentials(b.Consumers.All())
	})
	if err != nil {
		return nil, err
	}
	return v.(*credentials), nil
}

func indexCredentials(consumers []*policy.Consumer) (*credentials, error) {
	c := &credentials{byIssuer: map[string]*issuer{}, byName: make(map[string]*policy.Consumer, len(consumers))}
	var errs []error
	for _, cons := range consumers {
		c.byName[cons.Name] = cons
		for i := range cons.Credentials.JWT {
			cred := &cons.Credentials.JWT[i]
			key, err := credentialKey(cred)
			if err != nil {
				errs = append(errs, fmt.Errorf("consumer %q: credentials.jwt[%d]: %w", cons.Name, i, err))
				continue
			}
			iss := c.byIssuer[cred.Issuer]
			if iss == nil {
				iss = &issuer{}
				c.byIssuer[cred.Issuer] = iss
			}
			if key != nil {
				key.consumer = cons
				iss.keys = append(iss.keys, key)
			}
			if n := len(iss.consumers); n == 0 || iss.consumers[n-1] != cons {
				iss.consumers = append(iss.consumers, cons)
			}
		}
	}
	return c, errors.Join(errs...)
}

// credentialKey makes the key of one credential: the secret for HS*, the
// public key for the others. The algorithm defaults to HS256 for a secret
// and to the key type's usual one for a public key. A credential with
// neither names only the consumer of its issuer's tokens (checked by JWKS).
func credentialKey(cred *config.JWTCredential) (*verifyKey, error) {
	var alg algorithm
	if cred.Algorithm != "" {
		if alg = parseAlgorithm(cred.Algorithm); alg == algUnknown {
			return nil, fmt.Errorf("unknown algorithm %q", cred.Algorithm)
		}
	}
	switch {
	case alg.isHMAC() || (alg == algUnknown && cred.PublicKey == "" && cred.Secret != ""):
		if cred.Secret == "" {
			return nil, fmt.Errorf("algorithm %s needs a secret", alg)
		}
		if alg == algUnknown {
			alg = algHS256
		}
		return &verifyKey{algs: setOf(alg), raw: []byte(cred.Secret)}, nil
	case cred.PublicKey != "":
		raw, err := importPublicKey([]byte(cred.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("public_key: %w", err)
		}
		algs, def := publicKeyAlgorithms(raw)
		if algs == 0 {
			return nil, fmt.Errorf("public_key: unsupported key type %T", raw)
		}
		if alg == algUnknown {
			alg = def
		}
		if !algs.has(alg) {
			return nil, fmt.Errorf("algorithm %s does not fit a %T public key", alg, raw)
		}
		return &verifyKey{algs: setOf(alg), raw: raw}, nil
	case alg != algUnknown:
		return nil, fmt.Errorf("algorithm %s needs a public_key", alg)
	}
	return nil, nil
}
