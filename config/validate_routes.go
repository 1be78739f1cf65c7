package config

import (
	"fmt"
	"regexp"
	"strings"
)

func (v *validator) routes() {
	services := map[string]bool{}
	var serviceNames []string
	for _, s := range v.cfg.Services {
		if s.Name != "" {
			services[s.Name] = true
			serviceNames = append(serviceNames, s.Name)
		}
	}
	names := make([]string, len(v.cfg.Routes))
	for i, r := range v.cfg.Routes {
		names[i] = r.Name
		v.route(fmt.Sprintf("routes[%d]", i), r, services, serviceNames)
	}
	v.uniqueNames("routes", names, "route")
}

func (v *validator) route(p string, r Route, services map[string]bool, serviceNames []string) {
	var kinds []string
	if r.Service != "" {
		kinds = append(kinds, "service")
	}
	if len(r.Aggregate) > 0 {
		kinds = append(kinds, "aggregate")
	}
	if r.Mock != nil {
		kinds = append(kinds, "mock")
	}
	switch len(kinds) {
	case 0:
		v.add(p+".service", "route needs one of service, aggregate or mock")
	case 1:
	default:
		v.add(p+"."+kinds[1], "route has both %s and %s; use exactly one of service, aggregate or mock", kinds[0], kinds[1])
	}
	if r.Service != "" && !services[r.Service] {
		v.add(p+".service", "%s", didYouMean(fmt.Sprintf("unknown service %q", r.Service), r.Service, serviceNames))
	}
	if len(r.Paths) == 0 && len(r.Hosts) == 0 {
		v.add(p+".paths", "route needs at least one path or host")
	}
	params := map[string]bool{}
	for i, path := range r.Paths {
		for _, msg := range checkRoutePath(path, params) {
			v.add(fmt.Sprintf("%s.paths[%d]", p, i), "%s", msg)
		}
	}
	for i, h := range r.Hosts {
		if msg := checkHost(h); msg != "" {
			v.add(fmt.Sprintf("%s.hosts[%d]", p, i), "%s", msg)
		}
	}
	for i, m := range r.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", p, i)
		switch up := strings.ToUpper(m); {
		case !validToken(m):
			v.add(mp, "%q is not a valid HTTP method", m)
		case up == "CONNECT" || up == "TRACE":
			v.add(mp, "method %s cannot be routed", up)
		}
	}
	for _, name := range sortedKeys(r.Headers) {
		if !validToken(name) {
			v.add(p+".headers."+name, "%q is not a valid header name", name)
		}
	}
	v.aggregate(p, r.Aggregate, params, services, serviceNames)
	if m := r.Mock; m != nil {
		if m.Status < 100 || m.Status > 599 {
			v.add(p+".mock.status", "%d is not an HTTP status (100-599)", m.Status)
		}
		for _, name := range sortedKeys(m.Headers) {
			if !validToken(name) {
				v.add(p+".mock.headers."+name, "%q is not a valid header name", name)
			}
		}
	}
	v.policies(p+".policies", r.Policies)
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkRoutePath validates one route path and adds its template parameters
// to params. Forms: "/prefix", "=/exact", "~regexp", with "{name}" segments
// in the first two.
func checkRoutePath(path string, params map[string]bool) []string {
	switch {
	case strings.HasPrefix(path, "~"):
		if _, err := regexp.Compile(path[1:]); err != nil {
			return []string{fmt.Sprintf("invalid regular expression %q: %v", path[1:], err)}
		}
		return nil
	case strings.HasPrefix(path, "=/"):
		path = path[1:]
	case strings.HasPrefix(path, "/"):
	default:
		return []string{fmt.Sprintf("path %q must start with \"/\", \"=/\" (exact) or \"~\" (regular expression)", path)}
	}
	var msgs []string
	seen := map[string]bool{}
	for seg := range strings.SplitSeq(path, "/") {
		if !strings.ContainsAny(seg, "{}") {
			continue
		}
		name, ok := strings.CutPrefix(seg, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		switch {
		case !ok || !ok2 || strings.ContainsAny(name, "{}"):
			msgs = append(msgs, fmt.Sprintf("template %q must be a whole path segment such as \"/{id}\"", seg))
		case !identRe.MatchString(name):
			msgs = append(msgs, fmt.Sprintf("template name %q must be a letter or underscore followed by letters, digits or underscores", name))
		case seen[name]:
			msgs = append(msgs, fmt.Sprintf("template name %q is used twice", name))
		default:
			seen[name] = true
			params[name] = true
		}
	}
	return msgs
}

// checkHost returns what is wrong with a route host, or "".
func checkHost(h string) string {
	if strings.Contains(h, ":") {
		return fmt.Sprintf("host %q must not include a port", h)
	}
	name := strings.ToLower(h)
	if suffix, ok := strings.CutPrefix(name, "*."); ok {
		name = suffix
	}
	if !validHostname(name) {
		return fmt.Sprintf("%q is not a valid host name (use a name such as api.example.com or *.example.com)", h)
	}
	return ""
}

var placeholderRe = regexp.MustCompile(`\{([^{}]*)\}`)

// aggregate checks an aggregation route's calls: unique keys, known
// services, and placeholders that name the consumer, a path parameter of the
// route, or a field of another call, without a cycle between calls.
func (v *validator) aggregate(p string, calls []AggregateCall, params, services map[string]bool, serviceNames []string) {
	keys := map[string]int{}
	for i, c := range calls {
		cp := fmt.Sprintf("%s.aggregate[%d]", p, i)
		switch _, dup := keys[c.Key]; {
		case c.Key == "":
			v.add(cp+".key", "call needs a key (the field of the combined answer)")
		case dup:
			v.add(cp+".key", "duplicate key %q", c.Key)
		default:
			keys[c.Key] = i
		}
		if c.Service == "" {
			v.add(cp+".service", "call needs a service")
		} else if !services[c.Service] {
			v.add(cp+".service", "%s", didYouMean(fmt.Sprintf("unknown service %q", c.Service), c.Service, serviceNames))
		}
		if !strings.HasPrefix(c.Path, "/") {
			v.add(cp+".path", "path must start with \"/\", got %q", c.Path)
		}
		v.nonNegative(cp+".timeout", c.Timeout)
	}
	deps := make([][]int, len(calls))
	for i, c := range calls {
		for _, m := range placeholderRe.FindAllStringSubmatch(c.Path, -1) {
			ref := m[1]
			key, _, isField := strings.Cut(ref, ".")
			switch {
			case !isField && (ref == "consumer" || params[ref]):
			case isField && key == c.Key:
				v.add(fmt.Sprintf("%s.aggregate[%d].path", p, i), "placeholder {%s} refers to its own call", ref)
			case isField:
				j, ok := keys[key]
				if !ok {
					v.add(fmt.Sprintf("%s.aggregate[%d].path", p, i), "placeholder {%s} names no call of this route", ref)
					continue
				}
				deps[i] = append(deps[i], j)
			default:
				v.add(fmt.Sprintf("%s.aggregate[%d].path", p, i), "placeholder {%s} is neither {consumer}, a path parameter of the route, nor {KEY.FIELD} of another call", ref)
			}
		}
	}
	if cycle := findCycle(deps); cycle >= 0 {
		v.add(fmt.Sprintf("%s.aggregate[%d].path", p, cycle), "calls wait for each other in a cycle")
	}
}

// findCycle returns a node on a dependency cycle, or -1.
func findCycle(deps [][]int) int {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(deps))
	var visit func(int) int
	visit = func(i int) int {
		switch state[i] {
		case visiting:
			return i
		case done:
			return -1
		}
		state[i] = visiting
		for _, j := range deps[i] {
			if c := visit(j); c >= 0 {
				return c
			}
		}
		state[i] = done
		return -1
	}
	for i := range deps {
		if c := visit(i); c >= 0 {
			return c
		}
	}
	return -1
}
