package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/controlplane"
	"github.com/tollgate/tollgate/controlplane/store/memory"
)

const fileConfig = `
services:
  - {name: users, targets: [{url: "http://127.0.0.1:9001"}]}
routes:
  - {name: users-api, paths: [/users], service: users}
consumers:
  - {name: alice, groups: [partners]}
`

// apiServer is the admin API on a real listener, with a file applied, an
// admin token and a viewer token. Every answer is checked against the
// OpenAPI document.
type apiServer struct {
	t      *testing.T
	url    string
	ctrl   *controlplane.Controller
	client *http.Client
}

func startAPI(t *testing.T) *apiServer {
	t.Helper()
	ctx := context.Background()
	file, err := config.Parse("tollgate.yaml", []byte(fileConfig))
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := controlplane.New(ctx, memory.New(), file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.ApplyFile(ctx, file); err != nil {
		t.Fatal(err)
	}
	api := New(Options{Controller: ctrl, Nodes: func() []Node {
		return []Node{{ID: "dp-1", ConfigVersion: 1, Status: "connected", LastContact: time.Unix(1_800_000_000, 0).UTC()}}
	}})
	api.SetTokens([]config.AdminToken{{Name: "ops", Token: "admin-secret", Role: RoleAdmin}, {Name: "auditor", Token: "viewer-secret", Role: RoleViewer}}, "127.0.0.1:8001")
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &apiServer{t: t, url: srv.URL, ctrl: ctrl, client: &http.Client{Transport: conformance(t, http.DefaultTransport)}}
}

// do sends a request with a token and decodes a JSON answer into out.
func (s *apiServer) do(method, path, token, contentType, body string, out any) *http.Response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType == "" && body != "" {
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return resp
}

func (s *apiServer) admin(method, path, body string, out any) int {
	s.t.Helper()
	return s.do(method, path, "admin-secret", "", body, out).StatusCode
}

type apiError struct {
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"fields"`
	} `json:"error"`
}

// The OpenAPI document, loaded once; every request the tests make is
// validated against it, and the operations exercised are counted so that
// TestEveryDocumentedOperationIsExercised can tell none was left out.
var (
	specOnce   sync.Once
	spec       *openapi3.T
	specRouter routers.Router
	exercised  sync.Map // "METHOD path-template" -> true
)

func loadSpec(t *testing.T) {
	specOnce.Do(func() {
		var err error
		spec, err = openapi3.NewLoader().LoadFromData(openAPIJSON)
		if err == nil {
			err = spec.Validate(context.Background())
		}
		if err == nil {
			specRouter, err = legacy.NewRouter(spec)
		}
		if err != nil {
			panic("openapi document: " + err.Error())
		}
	})
}

type conformanceTransport struct {
	t    *testing.T
	next http.RoundTripper
}

func conformance(t *testing.T, next http.RoundTripper) http.RoundTripper {
	loadSpec(t)
	return conformanceTransport{t, next}
}

func (c conformanceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))

	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := specRouter.FindRoute(check)
	if err != nil {
		c.t.Errorf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return resp, nil
	}
	exercised.Store(req.Method+" "+route.Path, true)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	if resp.StatusCode < 400 { // refused requests may break the schema on purpose
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: request does not match the document: %v", req.Method, req.URL.Path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		c.t.Errorf("%s %s -> %d: answer does not match the document: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return resp, nil
}
