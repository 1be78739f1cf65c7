package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"strings"
)

// algorithm is a JWS signature algorithm this policy verifies. "none" has
// no value: it can never be named, so it can never be accepted.
type algorithm uint8

const (
	algUnknown algorithm = iota
	algHS256
	algHS384
	algHS512
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
	algCount
)

var algNames = [algCount]string{"", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (a algorithm) String() string { return algNames[a] }

// parseAlgorithm maps a header's alg (case-sensitive, as RFC 7518 says) to
// an algorithm; the conversion in the switch does not allocate.
func parseAlgorithm[T string | []byte](name T) algorithm {
	switch string(name) {
	case "HS256":
		return algHS256
	case "HS384":
		return algHS384
	case "HS512":
		return algHS512
	case "RS256":
		return algRS256
	case "RS384":
		return algRS384
	case "RS512":
		return algRS512
	case "PS256":
		return algPS256
	case "PS384":
		return algPS384
	case "PS512":
		return algPS512
	case "ES256":
		return algES256
	case "ES384":
		return algES384
	case "ES512":
		return algES512
	case "EdDSA":
		return algEdDSA
	}
	return algUnknown
}

// algorithmFold finds an algorithm spelt in another case, for suggestions.
func algorithmFold(name string) algorithm {
	for a := algHS256; a < algCount; a++ {
		if strings.EqualFold(name, algNames[a]) {
			return a
		}
	}
	return algUnknown
}

func algorithmNames() []string { return algNames[1:] }

func (a algorithm) isHMAC() bool { return a >= algHS256 && a <= algHS512 }

// algSet is a set of algorithms.
type algSet uint16

func setOf(as ...algorithm) algSet {
	var s algSet
	for _, a := range as {
		s |= 1 << a
	}
	return s
}

func (s algSet) has(a algorithm) bool { return a != algUnknown && s&(1<<a) != 0 }

var (
	allAlgorithms = setOf(algHS256, algHS384, algHS512, algRS256, algRS384, algRS512,
		algPS256, algPS384, algPS512, algES256, algES384, algES512, algEdDSA)
	rsaAlgorithms = setOf(algRS256, algRS384, algRS512, algPS256, algPS384, algPS512)
)

// publicKeyAlgorithms are the algorithms a public key can verify: its type
// (and curve) decides, so an RSA key can never check an HMAC signature.
// The first result is the algorithm to assume when none is named.
func publicKeyAlgorithms(key any) (algSet, algorithm) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return rsaAlgorithms, algRS256
	case *ecdsa.PublicKey:
		var a algorithm
		switch k.Curve {
		case elliptic.P256():
			a = algES256
		case elliptic.P384():
			a = algES384
		case elliptic.P521():
			a = algES512
		default:
			return 0, algUnknown
		}
		return setOf(a), a
	case ed25519.PublicKey:
		return setOf(algEdDSA), algEdDSA
	}
	return 0, algUnknown
}
