package router

import (
	"fmt"
	"net/http"
	"testing"
)

// benchKinds builds n routes of one kind and a request for the last one, so
// a table that scanned its routes would show it.
var benchKinds = []struct {
	name  string
	route func(i int) Route
	req   func(i int) Request
}{
	{
		name:  "exact",
		route: func(i int) Route { return Route{ID: i, Paths: []string{fmt.Sprintf("=/svc%d/exact", i)}} },
		req: func(i int) Request {
			return Request{Host: "api.example.com", Method: "GET", Path: fmt.Sprintf("/svc%d/exact", i)}
		},
	},
	{
		name: "prefix",
		route: func(i int) Route {
			return Route{ID: i, Paths: []string{fmt.Sprintf("/svc%d/api", i)}, Methods: []string{"GET"}}
		},
		req: func(i int) Request {
			return Request{Host: "api.example.com", Method: "GET", Path: fmt.Sprintf("/svc%d/api/users/42", i)}
		},
	},
	{
		name: "wildcard-host",
		route: func(i int) Route {
			return Route{ID: i, Hosts: []string{fmt.Sprintf("*.t%d.example.com", i)}, Paths: []string{"/users"}}
		},
		req: func(i int) Request {
			return Request{Host: fmt.Sprintf("Api.t%d.example.com:8443", i), Method: "GET", Path: "/users/42"}
		},
	},
	{
		name: "exact-host-header",
		route: func(i int) Route {
			return Route{ID: i, Hosts: []string{fmt.Sprintf("h%d.example.com", i)}, Paths: []string{"/"}, Headers: map[string]string{"X-Version": "2"}}
		},
		req: func(i int) Request {
			return Request{Host: fmt.Sprintf("h%d.example.com", i), Method: "GET", Path: "/a", Header: http.Header{"X-Version": {"2"}}}
		},
	},
	{
		name: "template",
		route: func(i int) Route {
			return Route{ID: i, Paths: []string{fmt.Sprintf("/svc%d/orders/{id}/items/{item}", i)}}
		},
		req: func(i int) Request {
			return Request{Host: "api.example.com", Method: "GET", Path: fmt.Sprintf("/svc%d/orders/123/items/9", i)}
		},
	},
	{
		name:  "regex",
		route: func(i int) Route { return Route{ID: i, Paths: []string{fmt.Sprintf(`~^/svc%d/v\d+/`, i)}} },
		req: func(i int) Request {
			return Request{Host: "api.example.com", Method: "GET", Path: fmt.Sprintf("/svc%d/v2/x", i)}
		},
	},
}

func BenchmarkMatch(b *testing.B) {
	for _, kind := range benchKinds {
		for _, n := range []int{1, 100, 10000} {
			if kind.name == "regex" && n > 1000 {
				n = 1000 // regexes are tried in order; 1000 already shows the growth
			}
			b.Run(fmt.Sprintf("%s/routes=%d", kind.name, n), func(b *testing.B) {
				routes := make([]Route, n)
				for i := range routes {
					routes[i] = kind.route(i)
				}
				r, err := Compile(routes)
				if err != nil {
					b.Fatal(err)
				}
				req := kind.req(n - 1)
				if m, ok := r.Match(&req); !ok || m.RouteID != n-1 {
					b.Fatalf("benchmark request matched %d %v, want %d", m.RouteID, ok, n-1)
				}
				b.ReportAllocs()
				for b.Loop() {
					r.Match(&req)
				}
			})
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, tt := range []struct{ name, path string }{
		{"canonical", "/api/v1/users/42/orders/%C3%A9"},
		{"non-canonical", "/api//v1/./users/%34%32/../42/orders/%c3%a9"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			p := []byte(tt.path)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := NormalizePath(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
