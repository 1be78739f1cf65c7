package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

var balancings = []string{"round_robin", "least_requests", "consistent_hash", "random"}

func (v *validator) services() {
	names := make([]string, len(v.cfg.Services))
	for i, s := range v.cfg.Services {
		names[i] = s.Name
		v.service(fmt.Sprintf("services[%d]", i), s)
	}
	v.uniqueNames("services", names, "service")
}

func (v *validator) service(p string, s Service) {
	if len(s.Targets) == 0 {
		v.add(p+".targets", "a service needs at least one target")
	}
	for i, t := range s.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, i)
		if msg := checkTargetURL(t.URL); msg != "" {
			v.add(tp+".url", "%s", msg)
		}
		if t.Weight != nil && (*t.Weight < 1 || *t.Weight > 1000) {
			v.add(tp+".weight", "weight must be between 1 and 1000, got %d", *t.Weight)
		}
	}
	if !contains(balancings, s.Balancing) {
		v.add(p+".balancing", "%s", didYouMean(fmt.Sprintf("unknown balancing %q (use %s)", s.Balancing, strings.Join(balancings, ", ")), s.Balancing, balancings))
	}
	if s.HashOn != "" {
		if !validHashOn(s.HashOn) {
			v.add(p+".hash_on", "hash_on must be ip, consumer or header:NAME, got %q", s.HashOn)
		} else if s.Balancing != "consistent_hash" {
			v.add(p+".hash_on", "hash_on only applies to balancing: consistent_hash")
		}
	}
	v.positive(p+".timeouts.connect", s.Timeouts.Connect)
	v.positive(p+".timeouts.response", s.Timeouts.Response)
	if a := s.Retries.Attempts; a != nil && (*a < 1 || *a > 10) {
		v.add(p+".retries.attempts", "attempts must be between 1 and 10 (it counts the first try), got %d", *a)
	}
	if a := s.HealthCheck.Active; a != nil {
		ap := p + ".health_check.active"
		if !strings.HasPrefix(a.Path, "/") {
			v.add(ap+".path", "path must start with \"/\", got %q", a.Path)
		}
		v.positive(ap+".interval", a.Interval)
		v.positive(ap+".timeout", a.Timeout)
		v.atLeastOne(ap+".healthy_threshold", a.HealthyThreshold)
		v.atLeastOne(ap+".unhealthy_threshold", a.UnhealthyThreshold)
	}
	if ps := s.HealthCheck.Passive; ps != nil {
		pp := p + ".health_check.passive"
		for i, st := range ps.UnhealthyStatuses {
			if st < 100 || st > 599 {
				v.add(fmt.Sprintf("%s.unhealthy_statuses[%d]", pp, i), "%d is not an HTTP status (100-599)", st)
			}
		}
		v.atLeastOne(pp+".unhealthy_threshold", ps.UnhealthyThreshold)
		v.positive(pp+".cooldown", ps.Cooldown)
	}
	if b := s.CircuitBreaker; b != nil {
		bp := p + ".circuit_breaker"
		if !(b.ErrorRatio > 0 && b.ErrorRatio <= 1) {
			v.add(bp+".error_ratio", "error_ratio must be above 0 and at most 1, got %g", b.ErrorRatio)
		}
		v.atLeastOne(bp+".min_requests", b.MinRequests)
		v.positive(bp+".window", b.Window)
		v.positive(bp+".open_for", b.OpenFor)
	}
	if s.TLS != nil {
		v.upstreamTLS(p+".tls", s)
	}
	v.policies(p+".policies", s.Policies)
}

// upstreamTLS checks a service's tls block: it must concern an https target
// and say one thing about trust.
func (v *validator) upstreamTLS(p string, s Service) {
	https := false
	for _, t := range s.Targets {
		https = https || strings.HasPrefix(strings.ToLower(t.URL), "https://")
	}
	if !https {
		v.add(p, "tls applies to https targets and this service has none")
	}
	tc := s.TLS
	if tc.CA != "" && tc.InsecureSkipVerify {
		v.add(p+".insecure_skip_verify", "insecure_skip_verify accepts any certificate, so ca would be ignored: set one of them")
	}
	if tc.ServerName != "" && !validHostname(tc.ServerName) && net.ParseIP(tc.ServerName) == nil {
		v.add(p+".server_name", "server_name must be a host name without port, got %q", tc.ServerName)
	}
}

func (v *validator) atLeastOne(path string, n int) {
	if n < 1 {
		v.add(path, "must be at least 1, got %d", n)
	}
}

// checkTargetURL returns what is wrong with an upstream URL, or "".
func checkTargetURL(raw string) string {
	if raw == "" {
		return "target url is required"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("invalid url %q", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c":
		return fmt.Sprintf("url %q must use http, https or h2c", raw)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("url %q has no host", raw)
	case u.User != nil:
		return fmt.Sprintf("url %q must not contain credentials", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Sprintf("url %q must not have a query or fragment", raw)
	case u.Path != "" && u.Path != "/":
		return fmt.Sprintf("url %q must not have a path (use the route to rewrite paths)", raw)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("url %q has an invalid port", raw)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Sprintf("url %q has an empty port", raw)
	}
	return ""
}

func validHashOn(h string) bool {
	if h == "ip" || h == "consumer" {
		return true
	}
	name, ok := strings.CutPrefix(h, "header:")
	return ok && validToken(name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
