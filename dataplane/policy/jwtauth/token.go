package jwtauth

import (
	"bytes"
	"encoding/base64"
	"sync"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// b64 decodes JWS segments: base64url without padding, strictly (no
// ignored newlines, no stray bits), so one token has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// token is a compact JWS split and decoded, with the claims the policy
// reads. Its slices point into the token or the scratch it was parsed into
// and live only as long as those.
type token struct {
	alg          algorithm
	kid          []byte
	signingInput []byte
	signature    []byte

	iss, aud      []byte // iss decoded, aud raw JSON
	exp, nbf, iat float64
	hasExp        bool
	hasNbf        bool
	hasIat        bool
	consumer      []byte   // the consumer_claim's string value
	claims        [][]byte // raw JSON per claims_to_headers entry, nil when absent
}

// scratch holds a request's decoding buffers; pooled, so that parsing a
// token allocates nothing in the common case.
type scratch struct {
	buf    []byte
	claims [][]byte
	out    []byte
	tok    token
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// claimNames are the claims a policy reads besides the registered ones.
type claimNames struct {
	consumer string   // consumer_claim, "" when consumers go by issuer
	headers  []string // claims_to_headers claims, in the order of the policy's header list
}

// parseToken splits and decodes raw into sc.tok. It checks the shape only:
// the signature and the claims' values are for the caller.
func parseToken(raw []byte, names *claimNames, sc *scratch) *policy.Reject {
	t := &sc.tok
	*t = token{claims: sc.claims[:0]}
	if len(raw) > maxTokenBytes {
		return rejectMalformed
	}
	h, p, s, err := jwsbb.SplitCompact(raw)
	if err != nil {
		return rejectMalformed
	}
	hn, pn, sn := b64.DecodedLen(len(h)), b64.DecodedLen(len(p)), b64.DecodedLen(len(s))
	if need := hn + pn + sn; cap(sc.buf) < need {
		sc.buf = make([]byte, need)
	}
	buf := sc.buf[:cap(sc.buf)]
	hdr, ok := decodeSegment(buf[:hn], h)
	if !ok {
		return rejectMalformed
	}
	payload, ok := decodeSegment(buf[hn:hn+pn], p)
	if !ok {
		return rejectMalformed
	}
	if t.signature, ok = decodeSegment(buf[hn+pn:hn+pn+sn], s); !ok || len(t.signature) == 0 {
		return rejectMalformed
	}
	t.signingInput = raw[:len(h)+1+len(p)]
	if r := t.readHeader(hdr); r != nil {
		return r
	}
	for range names.headers {
		t.claims = append(t.claims, nil)
	}
	sc.claims = t.claims
	return t.readClaims(payload, names)
}

func decodeSegment(dst, src []byte) ([]byte, bool) {
	n, err := b64.Decode(dst, src)
	return dst[:n], err == nil
}

// readHeader reads the protected header. Keys it carries (jwk, jku, x5u)
// are ignored: a token never chooses the key that checks it.
func (t *token) readHeader(hdr []byte) *policy.Reject {
	o, ok := openObject(hdr)
	if !ok {
		return rejectMalformed
	}
	var sawAlg, sawKid bool
	for {
		k, v, ok := o.next()
		if !ok {
			break
		}
		switch string(k) {
		case "alg":
			s, ok := jsonString(v)
			if !ok || sawAlg {
				return rejectMalformed
			}
			sawAlg, t.alg = true, parseAlgorithm(s)
			if t.alg == algUnknown {
				return rejectAlgorithm
			}
		case "kid":
			s, ok := jsonString(v)
			if !ok || sawKid {
				return rejectMalformed
			}
			sawKid, t.kid = true, s
		case "crit":
			// No extension is understood here, so none may be critical
			// (RFC 7515 4.1.11); this also refuses unencoded payloads.
			return rejectCritical
		}
	}
	if !sawAlg {
		return rejectMalformed
	}
	return nil
}

// readClaims reads the claims set. A claim that appears twice is refused:
// the upstream's JSON parser might pick the other one.
func (t *token) readClaims(payload []byte, names *claimNames) *policy.Reject {
	o, ok := openObject(payload)
	if !ok {
		return rejectMalformed
	}
	var sawIss, sawAud, sawConsumer bool
	for {
		k, v, ok := o.next()
		if !ok {
			break
		}
		switch string(k) {
		case "exp":
			if t.hasExp {
				return rejectMalformed
			}
			if t.exp, t.hasExp = jsonNumber(v); !t.hasExp {
				return rejectMalformed
			}
		case "nbf":
			if t.hasNbf {
				return rejectMalformed
			}
			if t.nbf, t.hasNbf = jsonNumber(v); !t.hasNbf {
				return rejectMalformed
			}
		case "iat":
			if t.hasIat {
				return rejectMalformed
			}
			if t.iat, t.hasIat = jsonNumber(v); !t.hasIat {
				return rejectMalformed
			}
		case "iss":
			s, ok := jsonString(v)
			if !ok || sawIss {
				return rejectMalformed
			}
			sawIss, t.iss = true, s
		case "aud":
			if sawAud {
				return rejectMalformed
			}
			sawAud, t.aud = true, v
		}
		if names.consumer != "" && string(k) == names.consumer {
			if sawConsumer {
				return rejectMalformed
			}
			sawConsumer = true
			if s, ok := jsonString(v); ok {
				t.consumer = s
			}
		}
		for i, name := range names.headers {
			if string(k) == name {
				if t.claims[i] != nil {
					return rejectMalformed
				}
				t.claims[i] = v
			}
		}
	}
	return nil
}

// audienceIn reports whether the aud claim (a string or an array of
// strings) holds one of audiences.
func (t *token) audienceIn(audiences []string) bool {
	found := false
	forEachString(t.aud, func(s []byte) bool {
		for _, a := range audiences {
			if string(s) == a {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

func containsString(list []string, s []byte) bool {
	for _, v := range list {
		if v == string(s) {
			return true
		}
	}
	return false
}

// bearerToken returns the token of an Authorization value with the Bearer
// scheme (case-insensitive, RFC 7235), nil for any other scheme.
func bearerToken(v []byte) []byte {
	const scheme = "bearer "
	if len(v) < len(scheme) || !bytes.EqualFold(v[:len(scheme)], []byte(scheme)) {
		return nil
	}
	return bytes.TrimLeft(v[len(scheme):], " ")
}

// cookieValue finds a cookie in Cookie header values ("a=1; b=2").
func cookieValue(headers [][]byte, name string) []byte {
	for _, h := range headers {
		for len(h) > 0 {
			var part []byte
			part, h, _ = bytes.Cut(h, []byte(";"))
			part = bytes.TrimSpace(part)
			k, v, ok := bytes.Cut(part, []byte("="))
			if ok && string(k) == name {
				return bytes.Trim(v, `"`)
			}
		}
	}
	return nil
}
