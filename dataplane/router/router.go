// Package router compiles routes into an immutable match table and finds the
// route of a request.
//
// The table is built once per configuration (Compile) and then only read, so
// any number of goroutines may call Match on it; a new configuration builds a
// new Router. Lookups are hash maps for hosts and exact paths and a segment
// trie for prefixes and templates, so their cost does not grow with the
// number of routes; only regex paths are tried one after the other.
//
// Match does not allocate for routes without parameters: Request carries
// strings and a Header interface (net/http's Header satisfies it), and Match
// is returned by value with its parameters stored inline as offsets into the
// request path. The matching rules are described in docs/routing.md.
package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
)

// Route is one routing rule. Its fields are conditions that must all hold.
type Route struct {
	ID       int               // caller's index, returned in Match
	Hosts    []string          // "api.example.com", "*.example.com"; empty = any host
	Paths    []string          // "/prefix", "=/exact", "~regex", "/orders/{id}"; empty = any path
	Methods  []string          // empty = any method
	Headers  map[string]string // exact value match, name case-insensitive
	Priority int               // higher is tried first, before every other rule
}

// Header looks up a request header by name, returning "" when absent.
// net/http.Header satisfies it as is. Names passed to Get are already in
// canonical MIME form, so http.Header.Get does not allocate.
type Header interface {
	Get(name string) string
}

// HeaderFunc adapts a function to Header.
type HeaderFunc func(name string) string

// Get calls f.
func (f HeaderFunc) Get(name string) string { return f(name) }

// Request is what the router needs to know about a request. Strings rather
// than byte slices keep Match free of conversions; a server holding bytes
// (fasthttp) may pass strings that alias its buffers, as long as it keeps
// them unchanged while it uses the Match, whose parameters alias Path.
type Request struct {
	Host   string // Host header or :authority, port allowed
	Method string
	Path   string // normalized with NormalizePath
	Header Header // may be nil when no route has header conditions
}

// Match is the outcome of a successful lookup.
type Match struct {
	RouteID int
	// PrefixLen is how many bytes of the path the pattern consumed, for
	// strip_path. For prefixes and templates it ends before the slash that
	// follows the last matched segment, so Path[PrefixLen:] is "" or starts
	// with "/". For "=/x" it is the whole path; for a regex it is the length
	// of the match when the regex is anchored with ^ or \A, else 0.
	PrefixLen int
	// Pattern is the matched entry of Route.Paths as written ("" when the
	// route has no paths), for logs and metrics.
	Pattern string

	path   string
	names  []string
	spans  [MaxParams]span
	params int
}

type span struct{ start, end int32 }

// Param returns the value of the named template parameter or regex group,
// or "" when there is none.
func (m *Match) Param(name string) string {
	for i := 0; i < m.params; i++ {
		if m.names[i] == name {
			return m.path[m.spans[i].start:m.spans[i].end]
		}
	}
	return ""
}

// NumParams returns how many parameters the match captured.
func (m *Match) NumParams() int { return m.params }

// ParamAt returns the name and value of the i-th parameter, in pattern order.
func (m *Match) ParamAt(i int) (name, value string) {
	return m.names[i], m.path[m.spans[i].start:m.spans[i].end]
}

// Router is a compiled, immutable routing table.
type Router struct {
	levels []*level // by descending priority
}

// level holds the routes of one Priority value, grouped by host.
type level struct {
	priority  int
	hosts     map[string]*table // exact host
	wildcards map[string]*table // "*.example.com" stored as "example.com"
	anyHost   *table
}

// table holds the paths of one host group.
type table struct {
	exact   map[string][]*candidate
	regexes []*candidate
	root    *node
}

// candidate is one route reachable through one pattern.
type candidate struct {
	routeID int
	order   int // position after sorting routes by ID, the final tie-break
	rank    int // regexes: position of the pattern's first appearance
	methods []string
	headers []headerCond
	pat     *pattern
}

type headerCond struct{ name, value string }

func (c *candidate) conditions() int {
	n := len(c.headers)
	if len(c.methods) > 0 {
		n++
	}
	return n
}

// before orders candidates sharing a pattern: more conditions first, then ID.
func (c *candidate) before(o *candidate) int {
	return cmp.Or(
		cmp.Compare(o.conditions(), c.conditions()),
		cmp.Compare(c.routeID, o.routeID),
		cmp.Compare(c.order, o.order),
	)
}

func (c *candidate) accepts(req *Request) bool {
	if len(c.methods) > 0 && !slices.Contains(c.methods, req.Method) {
		return false
	}
	for _, h := range c.headers {
		var v string
		if req.Header != nil {
			v = req.Header.Get(h.name)
		}
		if v != h.value {
			return false
		}
	}
	return true
}

// CompileError reports a route that cannot be compiled.
type CompileError struct {
	RouteID int
	Pattern string // the offending path or host as written
	Err     error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("route %d: %q: %v", e.RouteID, e.Pattern, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Compile builds a Router. It reports every invalid route at once, each
// error a *CompileError, joined with errors.Join.
func Compile(routes []Route) (*Router, error) {
	sorted := slices.Clone(routes)
	slices.SortStableFunc(sorted, func(a, b Route) int { return cmp.Compare(a.ID, b.ID) })

	var errs []error
	levels := map[int]*level{}
	regexRank := map[string]int{}
	for order, rt := range sorted {
		hosts, herrs := compileHosts(rt)
		errs = append(errs, herrs...)
		pats, perrs := compilePaths(rt)
		errs = append(errs, perrs...)
		if len(herrs)+len(perrs) > 0 {
			continue
		}
		methods := make([]string, len(rt.Methods))
		for i, m := range rt.Methods {
			methods[i] = strings.ToUpper(m)
		}
		headers := make([]headerCond, 0, len(rt.Headers))
		for name, value := range rt.Headers {
			headers = append(headers, headerCond{textproto.CanonicalMIMEHeaderKey(name), value})
		}
		slices.SortFunc(headers, func(a, b headerCond) int { return strings.Compare(a.name, b.name) })

		lv := levels[rt.Priority]
		if lv == nil {
			lv = &level{priority: rt.Priority, hosts: map[string]*table{}, wildcards: map[string]*table{}}
			levels[rt.Priority] = lv
		}
		for _, h := range hosts {
			t := lv.table(h)
			for _, p := range pats {
				c := &candidate{routeID: rt.ID, order: order, methods: methods, headers: headers, pat: p}
				if p.kind == kindRegex {
					if _, seen := regexRank[p.raw]; !seen {
						regexRank[p.raw] = len(regexRank)
					}
					c.rank = regexRank[p.raw]
				}
				t.add(c)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	r := &Router{}
	for _, lv := range levels {
		for _, t := range lv.hosts {
			t.finish()
		}
		for _, t := range lv.wildcards {
			t.finish()
		}
		if lv.anyHost != nil {
			lv.anyHost.finish()
		}
		r.levels = append(r.levels, lv)
	}
	slices.SortFunc(r.levels, func(a, b *level) int { return cmp.Compare(b.priority, a.priority) })
	return r, nil
}

// hostKey is a compiled host condition.
type hostKey struct {
	name     string
	wildcard bool
	any      bool
}

func compileHosts(rt Route) ([]hostKey, []error) {
	if len(rt.Hosts) == 0 {
		return []hostKey{{any: true}}, nil
	}
	var keys []hostKey
	var errs []error
	for _, raw := range rt.Hosts {
		h := strings.ToLower(raw)
		bad := func(msg string) {
			errs = append(errs, &CompileError{RouteID: rt.ID, Pattern: raw, Err: fmt.Errorf("host: %s", msg)})
		}
		switch {
		case h == "*":
			keys = append(keys, hostKey{any: true})
		case strings.HasPrefix(h, "*."):
			suffix := strings.TrimSuffix(h[2:], ".")
			if suffix == "" || strings.Contains(suffix, "*") || strings.HasPrefix(suffix, ".") {
				bad(`a wildcard is "*." followed by a domain`)
				continue
			}
			keys = append(keys, hostKey{name: suffix, wildcard: true})
		case h == "" || h == "." || strings.Contains(h, "*"):
			bad(`"*" is only allowed as the whole first label`)
		case stripPort(h) != h:
			bad("a port is not allowed; ports are ignored when matching")
		default:
			keys = append(keys, hostKey{name: strings.TrimSuffix(h, ".")})
		}
	}
	return keys, errs
}

func compilePaths(rt Route) ([]*pattern, []error) {
	if len(rt.Paths) == 0 {
		p, _ := parsePattern("/")
		p.raw = ""
		return []*pattern{p}, nil
	}
	var pats []*pattern
	var errs []error
	for _, raw := range rt.Paths {
		p, err := parsePattern(raw)
		if err != nil {
			errs = append(errs, &CompileError{RouteID: rt.ID, Pattern: raw, Err: err})
			continue
		}
		pats = append(pats, p)
	}
	return pats, errs
}

func (lv *level) table(h hostKey) *table {
	switch {
	case h.any:
		if lv.anyHost == nil {
			lv.anyHost = newTable()
		}
		return lv.anyHost
	case h.wildcard:
		if lv.wildcards[h.name] == nil {
			lv.wildcards[h.name] = newTable()
		}
		return lv.wildcards[h.name]
	default:
		if lv.hosts[h.name] == nil {
			lv.hosts[h.name] = newTable()
		}
		return lv.hosts[h.name]
	}
}

func newTable() *table {
	return &table{exact: map[string][]*candidate{}, root: &node{}}
}

func (t *table) add(c *candidate) {
	switch c.pat.kind {
	case kindExact:
		t.exact[c.pat.exact] = append(t.exact[c.pat.exact], c)
	case kindRegex:
		t.regexes = append(t.regexes, c)
	default:
		t.root.insert(c)
	}
}

// finish puts every candidate list in its final order.
func (t *table) finish() {
	for _, cs := range t.exact {
		slices.SortFunc(cs, (*candidate).before)
	}
	slices.SortFunc(t.regexes, func(a, b *candidate) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), a.before(b))
	})
	t.root.finish()
}

// Match finds the route of req. Priority levels are tried from the highest;
// within a level the exact host, then matching wildcard hosts from the
// longest suffix, then host-less routes; within a host group exact paths,
// then regexes in order, then the longest prefix or template.
func (r *Router) Match(req *Request) (m Match, ok bool) {
	host := stripHost(req.Host)
	if hasUpper(host) {
		return r.matchLowered(host, req)
	}
	for _, lv := range r.levels {
		if lv.match(host, req, &m) {
			return m, true
		}
	}
	return Match{}, false
}

// matchLowered is the rare path of a host with capitals; its buffer is kept
// out of Match so the common path does not clear it.
func (r *Router) matchLowered(host string, req *Request) (m Match, ok bool) {
	var buf [hostBufLen]byte
	host = lowerHost(host, &buf)
	for _, lv := range r.levels {
		if lv.match(host, req, &m) {
			return m, true
		}
	}
	return Match{}, false
}

// Each match method fills m and reports true, or leaves m unspecified.

func (lv *level) match(host string, req *Request, m *Match) bool {
	if len(lv.hosts) > 0 {
		if t := lv.hosts[host]; t != nil && t.match(req, m) {
			return true
		}
	}
	if len(lv.wildcards) > 0 {
		// Suffixes after each dot, longest first: "a.b.c" tries "b.c", then "c".
		for i := 0; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if t := lv.wildcards[host[i+1:]]; t != nil && t.match(req, m) {
				return true
			}
		}
	}
	return lv.anyHost != nil && lv.anyHost.match(req, m)
}

func (t *table) match(req *Request, m *Match) bool {
	if len(t.exact) > 0 {
		for _, c := range t.exact[req.Path] {
			if c.accepts(req) {
				*m = Match{RouteID: c.routeID, PrefixLen: len(req.Path), Pattern: c.pat.raw}
				return true
			}
		}
	}
	for _, c := range t.regexes {
		if c.matchRegex(req, m) {
			return true
		}
	}
	return t.root.match(req, m)
}

// matchRegex checks the cheap conditions before running the expression.
func (c *candidate) matchRegex(req *Request, m *Match) bool {
	if !c.accepts(req) {
		return false
	}
	p := c.pat
	if !p.anchored && len(p.groupIndex) == 0 {
		if !p.re.MatchString(req.Path) {
			return false
		}
		*m = Match{RouteID: c.routeID, Pattern: p.raw}
		return true
	}
	loc := p.re.FindStringSubmatchIndex(req.Path)
	if loc == nil {
		return false
	}
	*m = Match{RouteID: c.routeID, Pattern: p.raw, path: req.Path, names: p.paramNames}
	if p.anchored {
		m.PrefixLen = loc[1]
	}
	for _, g := range p.groupIndex {
		if loc[2*g] >= 0 {
			m.spans[m.params] = span{int32(loc[2*g]), int32(loc[2*g+1])}
		}
		m.params++
	}
	return true
}
