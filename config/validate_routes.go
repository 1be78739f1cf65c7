package config

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
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
	params := make([]map[string]bool, len(r.Paths)) // of each path
	for i, path := range r.Paths {
		params[i] = map[string]bool{}
		for _, msg := range checkRoutePath(path, params[i]) {
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
		case len(r.Aggregate) > 0 && up != "GET" && up != "HEAD":
			v.add(mp, "an aggregate route answers GET and HEAD only, not %s", up)
		}
	}
	for _, name := range sortedKeys(r.Headers) {
		if !validToken(name) {
			v.add(p+".headers."+name, "%q is not a valid header name", name)
		}
	}
	v.aggregate(p, r.Aggregate, params, services, serviceNames)
	if r.Mock != nil {
		v.mock(p+".mock", r.Mock)
	}
	v.policies(p+".policies", r.Policies)
}

// mock checks a mock answer: a static one, or one from an OpenAPI
// document's examples.
func (v *validator) mock(p string, m *Mock) {
	if m.Status < 100 || m.Status > 599 {
		v.add(p+".status", "%d is not an HTTP status (100-599)", m.Status)
	}
	for _, name := range sortedKeys(m.Headers) {
		if !validToken(name) {
			v.add(p+".headers."+name, "%q is not a valid header name", name)
		}
	}
	switch {
	case m.OpenAPI == "" && m.Operation != "":
		v.add(p+".operation", "operation needs openapi, the document it is an operation of")
	case m.OpenAPI == "":
	case m.Body != "":
		v.add(p+".body", "body and openapi exclude each other: the answer is the document's example")
	case m.Operation == "":
		v.add(p+".openapi", "openapi needs operation, whose example is the answer (an operationId or \"METHOD /path\")")
	default:
		if check := mockExamples.Load(); check != nil {
			for _, e := range (*check)(*m) {
				v.add(p+"."+e.Path, "%s", e.Msg)
			}
		}
	}
}

// mockExamples checks that a mock's OpenAPI document loads and has an
// example for its operation and status, once the package that reads
// OpenAPI documents registered it.
var mockExamples atomic.Pointer[func(Mock) []FieldError]

// RegisterMockExamples installs the check of mocks answered from OpenAPI
// examples, so that this package, which reads no OpenAPI, still reports a
// wrong document or operation at its line. check returns paths relative to
// the mock ("openapi", "operation", "status").
func RegisterMockExamples(check func(Mock) []FieldError) {
	mockExamples.Store(&check)
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkRoutePath validates one route path and adds its parameters to
// params. Forms: "/prefix", "=/exact", "~regexp", with "{name}" segments
// in the first two and named groups in the last.
func checkRoutePath(path string, params map[string]bool) []string {
	switch {
	case strings.HasPrefix(path, "~"):
		re, err := regexp.Compile(path[1:])
		if err != nil {
			return []string{fmt.Sprintf("invalid regular expression %q: %v", path[1:], err)}
		}
		for _, name := range re.SubexpNames() {
			if name != "" {
				params[name] = true
			}
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

// aggregate checks an aggregation route's calls: keys, services, path
// templates whose placeholders name the consumer, a parameter of every path
// of the route, or a field of another call, without a cycle between calls.
// The data plane parses the templates again, with the same grammar.
func (v *validator) aggregate(p string, calls []AggregateCall, params []map[string]bool, services map[string]bool, serviceNames []string) {
	keys := map[string]int{}
	for i, c := range calls {
		cp := fmt.Sprintf("%s.aggregate[%d]", p, i)
		switch _, dup := keys[c.Key]; {
		case c.Key == "":
			v.add(cp+".key", "call needs a key (the field of the combined answer)")
		case c.Key == aggregateErrorsKey:
			v.add(cp+".key", "key %q is reserved for the calls left out of the answer", c.Key)
		case !callKeyRe.MatchString(c.Key):
			v.add(cp+".key", "key %q must be a letter or \"_\" followed by letters, digits, \"_\" or \"-\"", c.Key)
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
		v.nonNegative(cp+".timeout", c.Timeout)
	}
	deps := make([][]int, len(calls))
	for i, c := range calls {
		pp := fmt.Sprintf("%s.aggregate[%d].path", p, i)
		refs, msg := callPlaceholders(c.Path)
		if msg != "" {
			v.add(pp, "%s", msg)
			continue
		}
		for _, ref := range refs {
			key, _, isField := strings.Cut(ref, ".")
			switch {
			case ref == "consumer":
			case !isField && inEvery(params, ref):
			case !isField && inAny(params, ref):
				v.add(pp, "placeholder {%s} is not a parameter of every path of the route; a request on another path would have no value", ref)
			case isField && key == c.Key:
				v.add(pp, "placeholder {%s} refers to its own call", ref)
			case isField:
				j, ok := keys[key]
				if !ok {
					v.add(pp, "placeholder {%s} names no call of this route", ref)
					continue
				}
				deps[i] = append(deps[i], j)
			default:
				v.add(pp, "placeholder {%s} is neither {consumer}, a path parameter of the route, nor {KEY.FIELD} of another call", ref)
			}
		}
	}
	if cycle := findCycle(deps); cycle >= 0 {
		v.add(fmt.Sprintf("%s.aggregate[%d].path", p, cycle), "calls wait for each other in a cycle")
	}
}

// aggregateErrorsKey is the field of an aggregate answer listing failed calls.
const aggregateErrorsKey = "_errors"

var (
	callKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	callFieldRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// callPlaceholders returns the placeholders of an aggregate call's path
// ("consumer", "id", "profile.id"), or what is wrong with the path.
func callPlaceholders(path string) (refs []string, problem string) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Sprintf("path must start with \"/\", got %q", path)
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '#':
			return nil, "a fragment (#) cannot be sent to a backend"
		case c == '%':
			if i+2 >= len(path) || !isHexDigit(path[i+1]) || !isHexDigit(path[i+2]) {
				return nil, `"%" must start an escape of two hex digits, such as %20`
			}
		case c >= 0x80:
			return nil, "non-ASCII characters must be percent-encoded (as UTF-8)"
		case c <= ' ' || c == 0x7f || strings.IndexByte("\"<>\\^`|", c) >= 0:
			return nil, fmt.Sprintf("character %q must be percent-encoded", rune(c))
		case c == '}':
			return nil, `"}" without "{"`
		case c == '{':
			end := strings.IndexAny(path[i+1:], "{}")
			if end < 0 || path[i+1+end] == '{' {
				return nil, fmt.Sprintf("placeholder at column %d is not closed with \"}\"", i+1)
			}
			ref := path[i+1 : i+1+end]
			if msg := checkPlaceholder(ref); msg != "" {
				return nil, msg
			}
			refs = append(refs, ref)
			i += end + 1
		}
	}
	return refs, ""
}

func checkPlaceholder(ref string) string {
	key, field, isField := strings.Cut(ref, ".")
	switch {
	case !isField && !identRe.MatchString(ref):
		return fmt.Sprintf("placeholder {%s}: a name is a letter or \"_\" followed by letters, digits or \"_\"", ref)
	case isField && (!callKeyRe.MatchString(key) || key == aggregateErrorsKey):
		return fmt.Sprintf("placeholder {%s}: %q is not a call key", ref, key)
	case isField:
		for f := range strings.SplitSeq(field, ".") {
			if !callFieldRe.MatchString(f) {
				return fmt.Sprintf("placeholder {%s}: each field after the key is a non-empty name of letters, digits, \"_\" or \"-\"", ref)
			}
		}
	}
	return ""
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func inEvery(sets []map[string]bool, name string) bool {
	for _, s := range sets {
		if !s[name] {
			return false
		}
	}
	return len(sets) > 0
}

func inAny(sets []map[string]bool, name string) bool {
	for _, s := range sets {
		if s[name] {
			return true
		}
	}
	return false
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
