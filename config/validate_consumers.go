package config

import (
	"crypto/sha256"
	"encoding/hex"
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
	apiKeys := map[string]string{} // key -> path of its first use
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
			jp := fmt.Sprintf("%s.credentials.jwt[%d]", p, j)
			if jw.Issuer == "" {
				v.add(jp+".issuer", "issuer must not be empty")
			}
			if jw.Secret == "" && jw.PublicKey == "" {
				v.add(jp+".secret", "jwt credential needs a secret or a public_key")
			}
		}
		for j, m := range cr.MTLS {
			if m.SubjectCN == "" && m.SAN == "" {
				v.add(fmt.Sprintf("%s.credentials.mtls[%d].subject_cn", p, j), "mtls credential needs subject_cn or san")
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
