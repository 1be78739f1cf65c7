package router

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// referenceMatch is the documented priority written as one sort over every
// (route, host, path) pair that matches, with no maps or trie. The router
// must always agree with it.
func referenceMatch(t testing.TB, routes []Route, req *Request) (Match, bool) {
	type hit struct {
		route      Route
		order      int
		hostClass  int // 0 exact, 1 wildcard, 2 any
		hostSuffix int // wildcard suffix length
		kind       int // 0 exact, 1 regex, 2 prefix
		regexRank  int
		depth      int
		kinds      []bool // per segment: true for a param
		slash      bool
		m          Match
	}
	sorted := slices.Clone(routes)
	slices.SortStableFunc(sorted, func(a, b Route) int { return cmp.Compare(a.ID, b.ID) })
	regexRank := map[string]int{}
	for _, rt := range sorted {
		for _, p := range rt.Paths {
			if _, ok := regexRank[p]; !ok && strings.HasPrefix(p, "~") {
				regexRank[p] = len(regexRank)
			}
		}
	}
	host := string(lowerASCII(make([]byte, len(stripPort(req.Host))), stripPort(req.Host)))
	host = strings.TrimSuffix(host, ".")

	var hits []hit
	for order, rt := range sorted {
		if len(rt.Methods) > 0 && !slices.ContainsFunc(rt.Methods, func(m string) bool { return strings.ToUpper(m) == req.Method }) {
			continue
		}
		headersOK := true
		for name, value := range rt.Headers {
			got := ""
			if req.Header != nil {
				got = req.Header.Get(http.CanonicalHeaderKey(name))
			}
			headersOK = headersOK && got == value
		}
		if !headersOK {
			continue
		}
		hosts := rt.Hosts
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		paths := rt.Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for _, hp := range hosts {
			hp = strings.ToLower(hp)
			h := hit{route: rt, order: order}
			switch {
			case hp == "*":
				h.hostClass = 2
			case strings.HasPrefix(hp, "*."):
				suffix := strings.TrimSuffix(hp[1:], ".")
				if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
					continue
				}
				h.hostClass, h.hostSuffix = 1, len(suffix)
			default:
				if strings.TrimSuffix(hp, ".") != host {
					continue
				}
			}
			for _, raw := range paths {
				p, err := parsePattern(raw)
				if err != nil {
					t.Fatalf("reference: %v", err)
				}
				h := h
				h.m = Match{RouteID: rt.ID, Pattern: raw, path: req.Path, names: p.paramNames}
				if len(rt.Paths) == 0 {
					h.m.Pattern = ""
				}
				switch p.kind {
				case kindExact:
					if req.Path != p.exact {
						continue
					}
					h.kind, h.m.PrefixLen = 0, len(req.Path)
				case kindRegex:
					loc := p.re.FindStringSubmatchIndex(req.Path)
					if loc == nil {
						continue
					}
					h.kind, h.regexRank = 1, regexRank[raw]
					if p.anchored {
						h.m.PrefixLen = loc[1]
					}
					for _, g := range p.groupIndex {
						if loc[2*g] >= 0 {
							h.m.spans[h.m.params] = span{int32(loc[2*g]), int32(loc[2*g+1])}
						}
						h.m.params++
					}
				default:
					end, ok := referencePrefix(p, req.Path, &h.m)
					if !ok {
						continue
					}
					h.kind, h.depth, h.slash, h.m.PrefixLen = 2, len(p.segs), p.trailingSlash, end
					for _, s := range p.segs {
						h.kinds = append(h.kinds, s.param)
					}
				}
				hits = append(hits, h)
			}
		}
	}
	if len(hits) == 0 {
		return Match{}, false
	}
	conds := func(r Route) int {
		n := len(r.Headers)
		if len(r.Methods) > 0 {
			n++
		}
		return n
	}
	best := slices.MinFunc(hits, func(a, b hit) int {
		c := cmp.Or(
			cmp.Compare(b.route.Priority, a.route.Priority),
			cmp.Compare(a.hostClass, b.hostClass),
			cmp.Compare(b.hostSuffix, a.hostSuffix),
			cmp.Compare(a.kind, b.kind),
			cmp.Compare(a.regexRank, b.regexRank),
			cmp.Compare(b.depth, a.depth),
			slices.CompareFunc(a.kinds, b.kinds, func(x, y bool) int {
				return cmp.Compare(boolInt(x), boolInt(y))
			}),
			cmp.Compare(boolInt(b.slash), boolInt(a.slash)),
			cmp.Compare(conds(b.route), conds(a.route)),
			cmp.Compare(a.route.ID, b.route.ID),
			cmp.Compare(a.order, b.order),
		)
		return c
	})
	return best.m, true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// referencePrefix matches a prefix or template by splitting the path.
func referencePrefix(p *pattern, path string, m *Match) (int, bool) {
	if !strings.HasPrefix(path, "/") {
		return 0, false
	}
	segs := strings.Split(path[1:], "/")
	if len(p.segs) > len(segs) {
		return 0, false
	}
	end := 0
	for i, s := range p.segs {
		got := segs[i]
		if s.param {
			if got == "" {
				return 0, false
			}
			m.spans[m.params] = span{int32(end + 1), int32(end + 1 + len(got))}
			m.params++
		} else if got != s.literal {
			return 0, false
		}
		end += 1 + len(got)
	}
	if p.trailingSlash && end == len(path) {
		return 0, false
	}
	return end, true
}

func sameMatch(a, b Match) bool {
	if a.RouteID != b.RouteID || a.PrefixLen != b.PrefixLen || a.Pattern != b.Pattern || a.NumParams() != b.NumParams() {
		return false
	}
	for i := range a.NumParams() {
		an, av := a.ParamAt(i)
		bn, bv := b.ParamAt(i)
		if an != bn || av != bv {
			return false
		}
	}
	return true
}

func describe(m Match, ok bool) string {
	if !ok {
		return "no match"
	}
	s := fmt.Sprintf("route %d %q prefix %d", m.RouteID, m.Pattern, m.PrefixLen)
	for i := range m.NumParams() {
		n, v := m.ParamAt(i)
		s += fmt.Sprintf(" %s=%s", n, v)
	}
	return s
}

// Vocabulary for generated route sets: small, so that routes overlap a lot.
var (
	genHosts   = []string{"api.example.com", "*.example.com", "*.b.example.com", "other.org", "*"}
	genPaths   = []string{"/", "/a", "/a/", "/a/b", "/a/{x}", "/{x}/b", "/a/{x}/c", "/{x}/{y}", "=/a", "=/a/b", "~^/a/b", "~/b$", `~^/(?P<first>[a-z])/`, "/b"}
	genMethods = []string{"GET", "POST"}
	genHeaders = []string{"X-A", "x-b"}
	reqHosts   = []string{"api.example.com", "API.example.com:80", "x.example.com", "x.b.example.com", "b.example.com", "example.com", "other.org.", ""}
	reqPaths   = []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/a/z/c", "/q/b", "/b", "/b/b", "/ab", "/a/b/c/d"}
)

func genRoutes(rng *rand.Rand) []Route {
	pick := func(vocab []string, max int) []string {
		var out []string
		for range rng.IntN(max + 1) {
			out = append(out, vocab[rng.IntN(len(vocab))])
		}
		return out
	}
	var routes []Route
	for range rng.IntN(12) + 1 {
		rt := Route{ID: rng.IntN(20), Hosts: pick(genHosts, 2), Paths: pick(genPaths, 2), Methods: pick(genMethods, 1), Priority: rng.IntN(3) - 1}
		if rng.IntN(3) > 0 {
			rt.Priority = 0
		}
		for _, h := range pick(genHeaders, 2) {
			if rt.Headers == nil {
				rt.Headers = map[string]string{}
			}
			rt.Headers[h] = "1"
		}
		routes = append(routes, rt)
	}
	return routes
}

func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for set := range 400 {
		routes := genRoutes(rng)
		r, err := Compile(routes)
		if err != nil {
			t.Fatalf("set %d: %v", set, err)
		}
		for _, host := range reqHosts {
			for _, path := range reqPaths {
				for _, method := range genMethods {
					hdr := http.Header{}
					if rng.IntN(2) == 0 {
						hdr.Set("X-A", "1")
					}
					if rng.IntN(2) == 0 {
						hdr.Set("X-B", "1")
					}
					req := &Request{Host: host, Method: method, Path: path, Header: hdr}
					got, gotOK := r.Match(req)
					want, wantOK := referenceMatch(t, routes, req)
					if gotOK != wantOK || (gotOK && !sameMatch(got, want)) {
						t.Fatalf("set %d routes %+v\nrequest %s %s%s %v\ngot  %s\nwant %s",
							set, routes, method, host, path, hdr, describe(got, gotOK), describe(want, wantOK))
					}
				}
			}
		}
	}
}

func FuzzMatch(f *testing.F) {
	routes := []Route{
		{ID: 0, Hosts: []string{"api.example.com"}, Paths: []string{"/users", "=/users/me"}, Methods: []string{"GET"}},
		{ID: 1, Hosts: []string{"*.example.com"}, Paths: []string{"/users/{id}", "/orders/{id}/items/{item}"}},
		{ID: 2, Hosts: []string{"*.b.example.com"}, Paths: []string{"/"}, Headers: map[string]string{"X-A": "1"}},
		{ID: 3, Paths: []string{`~^/v(?P<v>\d+)/`, "/users/"}},
		{ID: 4, Paths: []string{"/{a}/{b}/c", "/x/{b}"}, Priority: 1, Methods: []string{"POST"}},
		{ID: 5},
	}
	r, err := Compile(routes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("api.example.com", "GET", "/users/me", false)
	f.Add("x.b.example.com:80", "POST", "/x/y/c", true)
	f.Add("A.EXAMPLE.COM", "GET", "/orders/1/items/2/x", false)
	f.Add("[::1]:80", "PUT", "/v2/a", true)
	f.Fuzz(func(t *testing.T, host, method, rawPath string, withHeader bool) {
		hdr := http.Header{}
		if withHeader {
			hdr.Set("X-A", "1")
		}
		// Unnormalized paths must not break the router either.
		r.Match(&Request{Host: host, Method: method, Path: rawPath, Header: hdr})

		path, err := NormalizePathString(rawPath)
		if err != nil {
			return
		}
		req := &Request{Host: host, Method: method, Path: path, Header: hdr}
		got, ok := r.Match(req)
		if !ok {
			t.Fatalf("%s %s%s: no match despite a catch-all route", method, host, path)
		}
		if got.PrefixLen < 0 || got.PrefixLen > len(path) {
			t.Fatalf("PrefixLen %d outside %q", got.PrefixLen, path)
		}
		if rest := path[got.PrefixLen:]; !strings.HasPrefix(got.Pattern, "~") && rest != "" && rest[0] != '/' {
			t.Fatalf("%q: Path[PrefixLen:] = %q does not start with /", path, rest)
		}
		if want, wantOK := referenceMatch(t, routes, req); !wantOK || !sameMatch(got, want) {
			t.Fatalf("%s %s%s: got %s, want %s", method, host, path, describe(got, ok), describe(want, wantOK))
		}
	})
}
