package router

import (
	"errors"
	"fmt"
	"go/build"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// probe is one request against a route set and what it must match.
type probe struct {
	host, method, path string
	header             map[string]string
	want               int // route ID, or none
	prefixLen          int
	params             map[string]string
}

const none = -1

func (p probe) request() *Request {
	h := http.Header{}
	for k, v := range p.header {
		h.Set(k, v)
	}
	method := p.method
	if method == "" {
		method = "GET"
	}
	return &Request{Host: p.host, Method: method, Path: p.path, Header: h}
}

func (p probe) check(t *testing.T, r *Router) {
	t.Helper()
	m, ok := r.Match(p.request())
	if p.want == none {
		if ok {
			t.Fatalf("%s %s%s matched route %d (%q), want no match", p.method, p.host, p.path, m.RouteID, m.Pattern)
		}
		return
	}
	if !ok {
		t.Fatalf("%s %s%s matched nothing, want route %d", p.method, p.host, p.path, p.want)
	}
	if m.RouteID != p.want {
		t.Fatalf("%s %s%s matched route %d (%q), want %d", p.method, p.host, p.path, m.RouteID, m.Pattern, p.want)
	}
	if m.PrefixLen != p.prefixLen {
		t.Fatalf("%s %s%s PrefixLen = %d, want %d", p.method, p.host, p.path, m.PrefixLen, p.prefixLen)
	}
	if m.NumParams() != len(p.params) {
		t.Fatalf("%s %s%s has %d params, want %v", p.method, p.host, p.path, m.NumParams(), p.params)
	}
	for name, want := range p.params {
		if got := m.Param(name); got != want {
			t.Fatalf("%s %s%s Param(%q) = %q, want %q", p.method, p.host, p.path, name, got, want)
		}
	}
}

func (p probe) String() string {
	s := strings.TrimSpace(fmt.Sprintf("%s %s%s", p.method, p.host, p.path))
	for k, v := range p.header {
		s += fmt.Sprintf(" %s=%s", k, v)
	}
	return s
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route
		probes []probe
	}{
		{
			name: "exact host beats wildcard, wildcard needs a subdomain",
			routes: []Route{
				{ID: 0, Hosts: []string{"api.example.com"}},
				{ID: 1, Hosts: []string{"*.example.com"}},
			},
			probes: []probe{
				{host: "api.example.com", path: "/", want: 0},
				{host: "www.example.com", path: "/", want: 1},
				{host: "a.b.c.example.com", path: "/x", want: 1},
				{host: "example.com", path: "/", want: none},
				{host: "badexample.com", path: "/", want: none},
				{host: "", path: "/", want: none},
			},
		},
		{
			name: "host is case-insensitive, port and trailing dot ignored",
			routes: []Route{
				{ID: 0, Hosts: []string{"API.example.com"}},
				{ID: 1, Hosts: []string{"*.Example.COM"}},
				{ID: 2, Hosts: []string{"[::1]"}},
			},
			probes: []probe{
				{host: "api.example.com:8443", path: "/", want: 0},
				{host: "Api.Example.Com", path: "/", want: 0},
				{host: "api.example.com.", path: "/", want: 0},
				{host: "WWW.EXAMPLE.COM:80", path: "/", want: 1},
				{host: "[::1]:8000", path: "/", want: 2},
				{host: "[::1]", path: "/", want: 2},
			},
		},
		{
			name: "longest wildcard suffix wins",
			routes: []Route{
				{ID: 0, Hosts: []string{"*.example.com"}},
				{ID: 1, Hosts: []string{"*.eu.example.com"}},
			},
			probes: []probe{
				{host: "a.eu.example.com", path: "/", want: 1},
				{host: "x.a.eu.example.com", path: "/", want: 1},
				{host: "eu.example.com", path: "/", want: 0},
				{host: "a.us.example.com", path: "/", want: 0},
			},
		},
		{
			name: "host-less routes come last",
			routes: []Route{
				{ID: 0, Paths: []string{"/"}},
				{ID: 1, Hosts: []string{"api.example.com"}, Paths: []string{"/"}},
				{ID: 2, Hosts: []string{"*"}, Paths: []string{"/star"}},
			},
			probes: []probe{
				{host: "api.example.com", path: "/users", want: 1},
				{host: "other.org", path: "/users", want: 0},
				{host: "", path: "/users", want: 0},
				{host: "other.org", path: "/star/x", want: 2, prefixLen: 5},
			},
		},
		{
			name: "fallback from exact host to wildcard to host-less",
			routes: []Route{
				{ID: 0, Hosts: []string{"api.example.com"}, Paths: []string{"/users"}, Methods: []string{"GET"}},
				{ID: 1, Hosts: []string{"*.example.com"}, Paths: []string{"/orders"}},
				{ID: 2, Paths: []string{"/health", "/users"}},
				{ID: 3, Hosts: []string{"*.api.example.com"}, Paths: []string{"/orders"}, Methods: []string{"PUT"}},
			},
			probes: []probe{
				{host: "api.example.com", path: "/users/1", want: 0, prefixLen: 6},
				{host: "api.example.com", path: "/orders/1", want: 1, prefixLen: 7},
				{host: "api.example.com", path: "/health", want: 2, prefixLen: 7},
				{host: "api.example.com", method: "DELETE", path: "/users", want: 2, prefixLen: 6},
				{host: "v1.api.example.com", method: "PUT", path: "/orders", want: 3, prefixLen: 7},
				{host: "v1.api.example.com", method: "GET", path: "/orders", want: 1, prefixLen: 7},
				{host: "api.example.com", path: "/nothing", want: none},
			},
		},
		{
			name: "exact beats regex beats prefix",
			routes: []Route{
				{ID: 0, Paths: []string{"/users"}},
				{ID: 1, Paths: []string{`~^/users/\d+$`}},
				{ID: 2, Paths: []string{"=/users/5"}},
			},
			probes: []probe{
				{path: "/users/5", want: 2, prefixLen: 8},
				{path: "/users/6", want: 1, prefixLen: 8},
				{path: "/users/x", want: 0, prefixLen: 6},
				{path: "/users/5/", want: 0, prefixLen: 6},
			},
		},
		{
			name: "regexes in ID order",
			routes: []Route{
				{ID: 2, Paths: []string{"~^/a/b"}},
				{ID: 1, Paths: []string{"~^/a"}},
				{ID: 3, Paths: []string{"~^/a/b/c"}},
			},
			probes: []probe{
				{path: "/a/b/c", want: 1, prefixLen: 2},
				{path: "/x", want: none},
			},
		},
		{
			name: "regex PrefixLen and named groups",
			routes: []Route{
				{ID: 0, Paths: []string{`~^/api/v(?P<version>\d+)`}},
				{ID: 1, Paths: []string{`~/legacy/`}},
				{ID: 2, Paths: []string{`~\A/files/(?P<name>[^/]+)(?P<ext>\.txt)?$`}},
				{ID: 3, Paths: []string{`~(^/grp)`}},
			},
			probes: []probe{
				{path: "/api/v2/users", want: 0, prefixLen: 7, params: map[string]string{"version": "2"}},
				{path: "/old/legacy/x", want: 1, prefixLen: 0},
				{path: "/files/a.txt", want: 2, prefixLen: 12, params: map[string]string{"name": "a.txt", "ext": ""}},
				{path: "/grp/x", want: 3, prefixLen: 4},
			},
		},
		{
			name: "prefix on segment boundaries, longest wins",
			routes: []Route{
				{ID: 0, Paths: []string{"/users"}},
				{ID: 1, Paths: []string{"/users/admin"}},
				{ID: 2, Paths: []string{"/"}},
			},
			probes: []probe{
				{path: "/users", want: 0, prefixLen: 6},
				{path: "/users/", want: 0, prefixLen: 6},
				{path: "/users/5", want: 0, prefixLen: 6},
				{path: "/usersX", want: 2, prefixLen: 0},
				{path: "/users/admin", want: 1, prefixLen: 12},
				{path: "/users/admin/x/y", want: 1, prefixLen: 12},
				{path: "/users/adminX", want: 0, prefixLen: 6},
				{path: "/", want: 2, prefixLen: 0},
				{path: "/other/deep/path", want: 2, prefixLen: 0},
			},
		},
		{
			name: "no route for unmatched prefix",
			routes: []Route{
				{ID: 0, Paths: []string{"/users"}},
			},
			probes: []probe{
				{path: "/", want: none},
				{path: "/user", want: none},
				{path: "/usersX", want: none},
			},
		},
		{
			name: "trailing slash in a prefix needs more path",
			routes: []Route{
				{ID: 0, Paths: []string{"/users/"}},
				{ID: 1, Paths: []string{"/users"}},
			},
			probes: []probe{
				{path: "/users", want: 1, prefixLen: 6},
				{path: "/users/", want: 0, prefixLen: 6},
				{path: "/users/5", want: 0, prefixLen: 6},
			},
		},
		{
			name: "templates capture segments",
			routes: []Route{
				{ID: 0, Paths: []string{"/orders/{id}"}},
				{ID: 1, Paths: []string{"/orders/new"}},
				{ID: 2, Paths: []string{"/orders/{order_id}/items/{item}"}},
				{ID: 3, Paths: []string{"/shops/{shop}/orders/{id}/"}},
			},
			probes: []probe{
				{path: "/orders/7", want: 0, prefixLen: 9, params: map[string]string{"id": "7"}},
				{path: "/orders/7/", want: 0, prefixLen: 9, params: map[string]string{"id": "7"}},
				{path: "/orders/7/history", want: 0, prefixLen: 9, params: map[string]string{"id": "7"}},
				{path: "/orders/new", want: 1, prefixLen: 11},
				{path: "/orders/new/items/3", want: 2, prefixLen: 19, params: map[string]string{"order_id": "new", "item": "3"}},
				{path: "/orders/9/items/a%20b/x", want: 2, prefixLen: 21, params: map[string]string{"order_id": "9", "item": "a%20b"}},
				{path: "/orders/9/items", want: 0, prefixLen: 9, params: map[string]string{"id": "9"}},
				{path: "/orders", want: none},
				{path: "/orders/", want: none},
				{path: "/shops/s1/orders/o2/", want: 3, prefixLen: 19, params: map[string]string{"shop": "s1", "id": "o2"}},
				{path: "/shops/s1/orders/o2", want: none},
			},
		},
		{
			name: "deeper template beats shallower literal, literal wins at the first difference",
			routes: []Route{
				{ID: 0, Paths: []string{"/a/b"}},
				{ID: 1, Paths: []string{"/a/{x}/c"}},
				{ID: 2, Paths: []string{"/{p}/b/d"}},
				{ID: 3, Paths: []string{"/a/{y}/d"}},
			},
			probes: []probe{
				{path: "/a/b/c", want: 1, prefixLen: 6, params: map[string]string{"x": "b"}},
				{path: "/a/b/d", want: 3, prefixLen: 6, params: map[string]string{"y": "b"}},
				{path: "/z/b/d", want: 2, prefixLen: 6, params: map[string]string{"p": "z"}},
				{path: "/a/b/e", want: 0, prefixLen: 4},
			},
		},
		{
			name: "more conditions first on the same pattern, then ID",
			routes: []Route{
				{ID: 0, Paths: []string{"/x"}},
				{ID: 1, Paths: []string{"/x"}, Methods: []string{"GET"}},
				{ID: 2, Paths: []string{"/x"}, Methods: []string{"get"}, Headers: map[string]string{"x-api-version": "2"}},
				{ID: 4, Paths: []string{"=/y"}, Headers: map[string]string{"A": "1"}},
				{ID: 3, Paths: []string{"=/y"}, Headers: map[string]string{"B": "1"}},
				{ID: 5, Paths: []string{"=/y"}},
			},
			probes: []probe{
				{path: "/x", header: map[string]string{"X-Api-Version": "2"}, want: 2, prefixLen: 2},
				{path: "/x", header: map[string]string{"X-Api-Version": "3"}, want: 1, prefixLen: 2},
				{path: "/x", want: 1, prefixLen: 2},
				{method: "POST", path: "/x", header: map[string]string{"X-Api-Version": "2"}, want: 0, prefixLen: 2},
				{path: "/y", header: map[string]string{"A": "1", "B": "1"}, want: 3, prefixLen: 2},
				{path: "/y", header: map[string]string{"A": "1"}, want: 4, prefixLen: 2},
				{path: "/y", header: map[string]string{"A": "2"}, want: 5, prefixLen: 2},
			},
		},
		{
			name: "a route failing its conditions lets a shorter prefix match",
			routes: []Route{
				{ID: 0, Paths: []string{"/a/b"}, Methods: []string{"POST"}},
				{ID: 1, Paths: []string{"/a"}},
				{ID: 2, Paths: []string{"=/a/b"}, Methods: []string{"PUT"}},
				{ID: 3, Paths: []string{"~^/a/b$"}, Methods: []string{"PATCH"}},
			},
			probes: []probe{
				{method: "POST", path: "/a/b", want: 0, prefixLen: 4},
				{method: "GET", path: "/a/b", want: 1, prefixLen: 2},
				{method: "PUT", path: "/a/b", want: 2, prefixLen: 4},
				{method: "PATCH", path: "/a/b", want: 3, prefixLen: 4},
			},
		},
		{
			name: "explicit priority beats hosts and paths",
			routes: []Route{
				{ID: 0, Hosts: []string{"api.example.com"}, Paths: []string{"=/users"}},
				{ID: 1, Paths: []string{"/"}, Priority: 10, Headers: map[string]string{"X-Canary": "1"}},
				{ID: 2, Paths: []string{"/users"}, Priority: -1},
				{ID: 3, Paths: []string{"/"}, Priority: 5, Methods: []string{"DELETE"}},
			},
			probes: []probe{
				{host: "api.example.com", path: "/users", header: map[string]string{"X-Canary": "1"}, want: 1},
				{host: "api.example.com", method: "DELETE", path: "/users", want: 3},
				{host: "api.example.com", path: "/users", want: 0, prefixLen: 6},
				{host: "other.org", path: "/users/1", want: 2, prefixLen: 6},
			},
		},
		{
			name: "the example of docs/routing.md",
			routes: []Route{
				{ID: 0, Hosts: []string{"api.example.com"}, Paths: []string{"/users"}, Methods: []string{"GET"}},
				{ID: 1, Hosts: []string{"*.example.com"}, Paths: []string{"/users/{id}", "=/users/me"}},
				{ID: 2, Paths: []string{"/"}},
				{ID: 3, Priority: 10, Headers: map[string]string{"X-Canary": "1"}},
			},
			probes: []probe{
				{host: "api.example.com", path: "/users/5", want: 0, prefixLen: 6},
				{host: "api.example.com", method: "POST", path: "/users/5", want: 1, prefixLen: 8, params: map[string]string{"id": "5"}},
				{host: "api.example.com", path: "/users/me", want: 0, prefixLen: 6},
				{host: "www.example.com", path: "/users/me", want: 1, prefixLen: 9},
				{host: "example.com", path: "/users", want: 2},
				{host: "api.example.com", path: "/users", header: map[string]string{"X-Canary": "1"}, want: 3},
			},
		},
		{
			name:   "no routes",
			routes: nil,
			probes: []probe{{host: "a.b", path: "/", want: none}},
		},
		{
			name: "routes without conditions match everything",
			routes: []Route{
				{ID: 7},
			},
			probes: []probe{
				{method: "OPTIONS", host: "x.y", path: "/", want: 7},
				{path: "/a/b/c", want: 7},
			},
		},
		{
			name: "paths are matched as normalized text",
			routes: []Route{
				{ID: 0, Paths: []string{"/caf%c3%a9"}},
				{ID: 1, Paths: []string{"=/%7Euser"}},
			},
			probes: []probe{
				{path: "/caf%C3%A9/menu", want: 0, prefixLen: 10},
				{path: "/~user", want: 1, prefixLen: 6},
				{path: "/CAF%C3%A9", want: none},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compile(tt.routes)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.probes {
				t.Run(p.String(), func(t *testing.T) { p.check(t, r) })
			}
		})
	}
}

func TestMatchWithoutHeaderLookup(t *testing.T) {
	r, err := Compile([]Route{
		{ID: 0, Headers: map[string]string{"X-Key": "k"}},
		{ID: 1, Methods: []string{"GET"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := r.Match(&Request{Method: "GET", Path: "/"})
	if !ok || m.RouteID != 1 {
		t.Fatalf("got %v %v, want route 1", m.RouteID, ok)
	}
	m, ok = r.Match(&Request{Method: "GET", Path: "/", Header: HeaderFunc(func(name string) string {
		if name == "X-Key" {
			return "k"
		}
		return ""
	})})
	if !ok || m.RouteID != 0 {
		t.Fatalf("got %v %v, want route 0", m.RouteID, ok)
	}
}

func TestParamAt(t *testing.T) {
	r, err := Compile([]Route{{ID: 0, Paths: []string{"/a/{first}/b/{second}"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := r.Match(&Request{Path: "/a/1/b/2/c"})
	if !ok {
		t.Fatal("no match")
	}
	var got []string
	for i := range m.NumParams() {
		name, value := m.ParamAt(i)
		got = append(got, name+"="+value)
	}
	if strings.Join(got, ",") != "first=1,second=2" {
		t.Fatalf("params = %v", got)
	}
	if m.Param("missing") != "" {
		t.Fatal("missing param is not empty")
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		route   Route
		pattern string
		message string
	}{
		{"bad regex", Route{ID: 4, Paths: []string{"~^/a("}}, "~^/a(", "missing closing )"},
		{"unclosed param", Route{ID: 5, Paths: []string{"/a/{id"}}, "/a/{id", "parameter"},
		{"param inside a segment", Route{ID: 6, Paths: []string{"/a/x{id}"}}, "/a/x{id}", "parameter"},
		{"empty param", Route{ID: 6, Paths: []string{"/a/{}"}}, "/a/{}", "parameter"},
		{"param name starts with a digit", Route{ID: 6, Paths: []string{"/a/{1x}"}}, "/a/{1x}", "parameter"},
		{"duplicate param", Route{ID: 7, Paths: []string{"/{id}/{id}"}}, "/{id}/{id}", "twice"},
		{"too many params", Route{ID: 7, Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"}}, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "more than 8"},
		{"relative path", Route{ID: 8, Paths: []string{"users"}}, "users", "does not start with /"},
		{"empty path", Route{ID: 8, Paths: []string{""}}, "", "empty"},
		{"exact with encoded slash", Route{ID: 9, Paths: []string{"=/a%2Fb"}}, "=/a%2Fb", "encoded slash"},
		{"wildcard in the middle", Route{ID: 10, Hosts: []string{"a.*.com"}}, "a.*.com", "host"},
		{"empty wildcard", Route{ID: 11, Hosts: []string{"*."}}, "*.", "host"},
		{"host with port", Route{ID: 12, Hosts: []string{"a.com:8080"}}, "a.com:8080", "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]Route{{ID: 0, Paths: []string{"/fine"}}, tt.route})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *CompileError", err)
			}
			if ce.RouteID != tt.route.ID || ce.Pattern != tt.pattern {
				t.Fatalf("error names route %d %q, want %d %q", ce.RouteID, ce.Pattern, tt.route.ID, tt.pattern)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("route %d", tt.route.ID)) || !strings.Contains(msg, tt.message) {
				t.Fatalf("error %q should name the route and say %q", msg, tt.message)
			}
		})
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	_, err := Compile([]Route{
		{ID: 1, Paths: []string{"~("}},
		{ID: 2, Paths: []string{"/ok"}},
		{ID: 3, Paths: []string{"/{"}, Hosts: []string{"x.*"}},
	})
	msg := fmt.Sprint(err)
	for _, want := range []string{`route 1: "~("`, `route 3: "/{"`, `route 3: "x.*"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestMatchIsSafeForConcurrentUse(t *testing.T) {
	r, err := Compile([]Route{
		{ID: 0, Hosts: []string{"*.example.com"}, Paths: []string{"/orders/{id}"}},
		{ID: 1, Paths: []string{`~^/r/(?P<n>\d+)`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprint(g*1000 + i)
				m, ok := r.Match(&Request{Host: "A.example.com", Method: "GET", Path: "/orders/" + id})
				if !ok || m.Param("id") != id {
					errs <- fmt.Errorf("got %v %q, want %s", ok, m.Param("id"), id)
					return
				}
				m, ok = r.Match(&Request{Path: "/r/" + id})
				if !ok || m.Param("n") != id {
					errs <- fmt.Errorf("regex got %v %q, want %s", ok, m.Param("n"), id)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestMatchAllocations is the allocation budget of the hot path.
func TestMatchAllocations(t *testing.T) {
	r, err := Compile([]Route{
		{ID: 0, Hosts: []string{"api.example.com"}, Paths: []string{"=/exact"}},
		{ID: 1, Hosts: []string{"*.example.com"}, Paths: []string{"/users"}, Methods: []string{"GET"}},
		{ID: 2, Paths: []string{"/orders/{id}/items/{item}"}, Headers: map[string]string{"X-V": "1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{"X-V": {"1"}}
	tests := []struct {
		name string
		req  Request
	}{
		{"exact", Request{Host: "api.example.com", Method: "GET", Path: "/exact"}},
		{"wildcard prefix", Request{Host: "www.example.com:8000", Method: "GET", Path: "/users/5"}},
		{"uppercase host", Request{Host: "WWW.Example.com", Method: "GET", Path: "/users/5"}},
		{"template with header", Request{Host: "x.org", Method: "GET", Path: "/orders/1/items/2", Header: hdr}},
		{"no match", Request{Host: "x.org", Method: "GET", Path: "/nothing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, func() { r.Match(&tt.req) }); n != 0 {
				t.Fatalf("Match allocates %v times", n)
			}
		})
	}
}

// TestImportsOnlyStandardLibrary keeps the router free of configuration and
// other project packages: the engine adapts its input.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("router imports %s", imp)
		}
	}
}

func TestExactTemplates(t *testing.T) {
	r, err := Compile([]Route{
		{ID: 0, Paths: []string{"=/orders/{id}"}},
		{ID: 1, Paths: []string{"/orders/{id}"}},
		{ID: 2, Paths: []string{"=/files/{name}/"}},
		{ID: 3, Paths: []string{"/orders"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		route int
		param string
	}{
		{"/orders/7", 0, "7"},       // the exact template wins at its depth
		{"/orders/7/items", 1, "7"}, // longer: only the prefix template
		{"/orders", 3, ""},          // no segment for {id}
		{"/files/a/", 2, "a"},       // trailing slash written, and sent
		{"/files/a", -1, ""},        // trailing slash written, not sent
		{"/files/a/b", -1, ""},      // more than the whole path
	} {
		m, ok := r.Match(&Request{Path: tc.path})
		switch {
		case tc.route < 0 && ok:
			t.Errorf("%s matched route %d, want none", tc.path, m.RouteID)
		case tc.route >= 0 && (!ok || m.RouteID != tc.route):
			t.Errorf("%s: match %v route %d, want %d", tc.path, ok, m.RouteID, tc.route)
		case ok && tc.param != "" && firstParam(m) != tc.param:
			t.Errorf("%s: param %q, want %q", tc.path, firstParam(m), tc.param)
		case ok && m.RouteID == 0 && m.PrefixLen != len(tc.path):
			t.Errorf("%s: prefix length %d, want the whole path", tc.path, m.PrefixLen)
		}
	}
}

func firstParam(m Match) string {
	if m.NumParams() == 0 {
		return ""
	}
	_, v := m.ParamAt(0)
	return v
}
