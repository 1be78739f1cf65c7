package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
)

var periods = []string{"day", "week", "month", "year"}

func (v *validator) consumers() {
	plans := map[string]bool{}
	var planNames []string
	for _, pl := range v.cfg.Plans {
		if pl.Name != "" {
			plans[pl.Name] = true
			planNames = append(planNames, pl.Name)
		}
	}
	names := make([]string, len(v.cfg.Consumers))
	apiKeys := map[string]string{}   // key -> path of its first use
	mtlsNames := map[string]string{} // "subject_cn=NAME" -> path of its first claim
	for i, c := range v.cfg.Consumers {
		names[i] = c.Name
		p := fmt.Sprintf("consumers[%d]", i)
		for j, g := range c.Groups {
			if strings.TrimSpace(g) == "" {
				v.add(fmt.Sprintf("%s.groups[%d]", p, j), "group name must not be empty")
			}
		}
		if c.Plan != "" && !plans[c.Plan] {
			v.add(p+".plan", "%s", didYouMean(fmt.Sprintf("unknown plan %q", c.Plan), c.Plan, planNames))
		}
		cr := c.Credentials
		for j, k := range cr.KeyAuth {
			kp := fmt.Sprintf("%s.credentials.key-auth[%d].key", p, j)
			digest := strings.ToLower(k.SHA256)
			switch {
			case k.Key != "" && k.SHA256 != "":
				v.add(kp, "set key or sha256, not both")
				continue
			case k.SHA256 != "":
				kp = strings.TrimSuffix(kp, "key") + "sha256"
				if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != sha256.Size {
					v.add(kp, "sha256 must be 64 hexadecimal digits")
					continue
				}
			case k.Key == "":
				v.add(kp, "key must not be empty")
				continue
			default:
				sum := sha256.Sum256([]byte(k.Key))
				digest = hex.EncodeToString(sum[:])
			}
			if first, dup := apiKeys[digest]; dup {
				// One key for two consumers would make identification ambiguous.
				v.add(kp, "this key is already used by %s", first)
			} else {
				apiKeys[digest] = kp
			}
		}
		for j, b := range cr.BasicAuth {
			bp := fmt.Sprintf("%s.credentials.basic-auth[%d]", p, j)
			if b.Username == "" {
				v.add(bp+".username", "username must not be empty")
			}
			if b.Password == "" {
				v.add(bp+".password", "password must not be empty")
			}
		}
		for j, jw := range cr.JWT {
			v.jwtCredential(fmt.Sprintf("%s.credentials.jwt[%d]", p, j), jw)
		}
		for j, m := range cr.MTLS {
			mp := fmt.Sprintf("%s.credentials.mtls[%d]", p, j)
			if m.SubjectCN == "" && m.SAN == "" {
				v.add(mp+".subject_cn", "mtls credential needs subject_cn or san")
			}
			// One certificate name for two consumers would make
			// identification ambiguous.
			for _, id := range []struct{ field, value string }{{"subject_cn", m.SubjectCN}, {"san", m.SAN}} {
				if id.value == "" {
					continue
				}
				key := id.field + "=" + strings.ToLower(id.value)
				if first, dup := mtlsNames[key]; dup && !strings.HasPrefix(first, p+".") {
					v.add(mp+"."+id.field, "%s %q is already claimed by %s", id.field, id.value, first)
				} else if !dup {
					mtlsNames[key] = mp
				}
			}
		}
	}
	v.uniqueNames("consumers", names, "consumer")
}

func (v *validator) plans() {
	names := make([]string, len(v.cfg.Plans))
	for i, pl := range v.cfg.Plans {
		names[i] = pl.Name
		p := fmt.Sprintf("plans[%d]", i)
		if pr := pl.Price; pr != nil {
			if pr.Amount < 0 {
				v.add(p+".price.amount", "amount must not be negative")
			}
			if len(pr.Currency) != 3 {
				v.add(p+".price.currency", "currency must be a three-letter ISO 4217 code, got %q", pr.Currency)
			}
			v.period(p+".price.period", pr.Period)
		}
		if q := pl.Quota; q != nil {
			if q.Requests < 1 {
				v.add(p+".quota.requests", "must be at least 1, got %d", q.Requests)
			}
			v.period(p+".quota.period", q.Period)
		}
		if rl := pl.RateLimit; rl != nil {
			v.atLeastOne(p+".rate_limit.limit", rl.Limit)
			v.positive(p+".rate_limit.window", rl.Window)
		}
		if o := pl.Overage; o != nil && o.AmountPer1000 < 0 {
			v.add(p+".overage.amount_per_1000", "must not be negative")
		}
	}
	v.uniqueNames("plans", names, "plan")
}

func (v *validator) period(path, period string) {
	if !contains(periods, period) {
		v.add(path, "period must be one of %s, got %q", strings.Join(periods, ", "), period)
	}
}

// policies checks that every policy is registered and runs its check on the
// settings, placing the check's errors under the policy's path.
func (v *validator) policies(p string, ps Policies) {
	for _, name := range sortedKeys(ps) {
		pp := p + "." + name
		check, ok := policyCheck(name)
		if !ok {
			v.add(pp, "%s", didYouMean(fmt.Sprintf("unknown policy %q", name), name, PolicyNames()))
			continue
		}
		settings := ps[name]
		if settings == nil || check == nil {
			continue
		}
		for _, fe := range check(settings) {
			switch {
			case fe.Path == "":
				fe.Path = pp
			case strings.HasPrefix(fe.Path, "["):
				fe.Path = pp + fe.Path
			default:
				fe.Path = pp + "." + fe.Path
			}
			v.errs = append(v.errs, fe)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// jwtAlgorithms are the signing algorithms a jwt credential may name.
var jwtAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// jwtCredential checks one jwt credential: an issuer, and either a secret
// (HS algorithms), a PEM public key (the others), or neither when the
// issuer's keys come from a JWKS URL.
func (v *validator) jwtCredential(jp string, jw JWTCredential) {
	if jw.Issuer == "" {
		v.add(jp+".issuer", "issuer must not be empty")
	}
	if jw.Secret != "" && jw.PublicKey != "" {
		v.add(jp+".public_key", "set secret or public_key, not both")
		return
	}
	if jw.Algorithm != "" && !contains(jwtAlgorithms, jw.Algorithm) {
		v.add(jp+".algorithm", "%s", didYouMean(fmt.Sprintf("unknown algorithm %q (use one of %s)", jw.Algorithm, strings.Join(jwtAlgorithms, ", ")), jw.Algorithm, jwtAlgorithms))
		return
	}
	hmac := strings.HasPrefix(jw.Algorithm, "HS")
	switch {
	case jw.Secret != "" && jw.Algorithm != "" && !hmac:
		v.add(jp+".algorithm", "a secret signs only HS256, HS384 or HS512, not %s", jw.Algorithm)
	case jw.PublicKey != "" && hmac:
		v.add(jp+".algorithm", "%s needs a secret, not a public_key", jw.Algorithm)
	case jw.PublicKey != "":
		block, _ := pem.Decode([]byte(jw.PublicKey))
		if block == nil {
			v.add(jp+".public_key", "public_key is not PEM")
		} else if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			if _, cerr := x509.ParseCertificate(block.Bytes); cerr != nil {
				v.add(jp+".public_key", "public_key is neither a PKIX public key nor a certificate: %v", err)
			}
		}
	}
}
