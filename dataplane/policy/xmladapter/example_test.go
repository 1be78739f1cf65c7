package xmladapter_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/transform"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

// docsExample is the configuration of the worked example in
// docs/legacy-adapter.md, with the service's URL left to fill in.
const docsExample = `
consumers:
  - name: crm
    credentials:
      key-auth: [{key: "crm-key"}]

services:
  - name: user-service
    targets: [{url: %q}]

routes:
  - name: get-user
    paths: ["/users/{id}"]
    methods: [GET]
    service: user-service
    policies:
      key-auth: {}
      xml-adapter:
        request:
          to: soap
          soap_version: "1.1"
          root: GetUser
          namespace: "http://example.com/users"
          soap_action: "http://example.com/users/GetUser"
          params_from: path
          path_pattern: "/users/{id}"
          endpoint: /UserService.asmx
        response:
          select: GetUserResult
          arrays: [phones/phone]
          types: {id: number, active: boolean}
          fault_status: 404

  - name: create-user
    paths: ["=/users"]
    methods: [POST]
    service: user-service
    policies:
      key-auth: {}
      xml-adapter:
        request:
          to: soap
          root: CreateUser
          namespace: "http://example.com/users"
          soap_action: "http://example.com/users/CreateUser"
          endpoint: /UserService.asmx
        response:
          select: CreateUserResult
          types: {id: number}
      response-transform:
        status_map: {200: 201}
`

// userService is the SOAP 1.1 service of the example, as a .NET or JAX-WS
// service answers: GetUser and CreateUser at /UserService.asmx, a Client
// fault for an unknown user.
type userService struct {
	mu   sync.Mutex
	last string // the last request, as "METHOD PATH SOAPAction\nbody"
}

func (s *userService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.last = r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("SOAPAction") + "\n" + string(body)
	s.mu.Unlock()
	var env struct {
		Body struct {
			GetUser *struct {
				ID string `xml:"id"`
			} `xml:"http://example.com/users GetUser"`
			CreateUser *struct {
				Name  string `xml:"name"`
				Email string `xml:"email"`
			} `xml:"http://example.com/users CreateUser"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if r.URL.Path != "/UserService.asmx" || r.Method != "POST" || xml.Unmarshal(body, &env) != nil {
		w.WriteHeader(500)
		io.WriteString(w, envelope(soap11NS, fault(soap11NS, "Client", "bad request")))
		return
	}
	switch {
	case env.Body.GetUser != nil && env.Body.GetUser.ID == "7":
		io.WriteString(w, envelope(soap11NS, `<GetUserResponse xmlns="http://example.com/users"><GetUserResult>`+
			`<id>7</id><name>Ada Lovelace</name><email>ada@example.com</email><active>true</active>`+
			`<phones><phone type="mobile">+44 20 7946 0000</phone></phones>`+
			`</GetUserResult></GetUserResponse>`))
	case env.Body.GetUser != nil:
		w.WriteHeader(500)
		io.WriteString(w, envelope(soap11NS, fault(soap11NS, "Client", "User "+env.Body.GetUser.ID+" not found")))
	case env.Body.CreateUser != nil && env.Body.CreateUser.Name != "":
		io.WriteString(w, envelope(soap11NS, `<CreateUserResponse xmlns="http://example.com/users">`+
			`<CreateUserResult><id>8</id></CreateUserResult></CreateUserResponse>`))
	default:
		w.WriteHeader(500)
		io.WriteString(w, envelope(soap11NS, fault(soap11NS, "Client", "name is required")))
	}
}

func TestDocsWorkedExample(t *testing.T) {
	requireEditor(t)
	svc := &userService{}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	g := gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(docsExample, srv.URL), nil)
	sent := func() string {
		svc.mu.Lock()
		defer svc.mu.Unlock()
		return svc.last
	}

	a := do(t, "GET", g.URL+"/users/7", nil, "apikey", "crm-key")
	if a.status != 200 || a.body != `{"id":7,"name":"Ada Lovelace","email":"ada@example.com","active":true,"phones":{"phone":[{"@type":"mobile","#text":"+44 20 7946 0000"}]}}` {
		t.Errorf("GET /users/7: %d %s", a.status, a.body)
	}
	want := `POST /UserService.asmx "http://example.com/users/GetUser"` + "\n" +
		`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
		`<GetUser xmlns="http://example.com/users"><id>7</id></GetUser></soap:Body></soap:Envelope>`
	if got := sent(); got != want {
		t.Errorf("the service got\n%s\nwant\n%s", got, want)
	}

	a = do(t, "GET", g.URL+"/users/99", nil, "apikey", "crm-key")
	if e := parseError(t, a.body); a.status != 404 || e.Error.Code != "upstream_fault" || e.Error.Message != "User 99 not found" {
		t.Errorf("GET /users/99: %d %s", a.status, a.body)
	}

	a = postJSON(t, g.URL+"/users", `{"name": "Grace Hopper", "email": "grace@example.com",
		"phones": {"phone": [{"@type": "work", "#text": "+1 555 0100"}]}}`, "apikey", "crm-key")
	if a.status != 201 || a.body != `{"id":8}` {
		t.Errorf("POST /users: %d %s", a.status, a.body)
	}
	if got := sent(); !strings.HasSuffix(got, `<CreateUser xmlns="http://example.com/users"><name>Grace Hopper</name><email>grace@example.com</email>`+
		`<phones><phone type="work">+1 555 0100</phone></phones></CreateUser></soap:Body></soap:Envelope>`) {
		t.Errorf("the service got\n%s", got)
	}

	a = postJSON(t, g.URL+"/users", `{"email": "x@example.com"}`, "apikey", "crm-key")
	if e := parseError(t, a.body); a.status != 502 || e.Error.Code != "upstream_fault" || e.Error.Message != "name is required" {
		t.Errorf("POST /users without a name: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", g.URL+"/users/7", nil); a.status != 401 {
		t.Errorf("without a key: %d", a.status)
	}
}
