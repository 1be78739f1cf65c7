package xmladapter_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	_ "github.com/tollgate/tollgate/dataplane/policy/xmladapter"
	"github.com/tollgate/tollgate/internal/gatewaytest"
)

const (
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"
	usersNS  = "http://example.com/users"
)

// element is an XML element as the backend parses it, generically.
type element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []element  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (e *element) child(local string) *element {
	for i := range e.Children {
		if e.Children[i].XMLName.Local == local {
			return &e.Children[i]
		}
	}
	return nil
}

// received is one request as the backend saw it.
type received struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
	ContentLength          int64
	// Operation is the SOAP Body's first child (or the plain XML root),
	// parsed; nil when the body is not XML.
	Operation *element
	ParseErr  error
}

// fixture is a canned answer.
type fixture struct {
	status      int
	contentType string
	body        string
	chunked     bool // sent without a Content-Length
	header      map[string]string
}

// backend is a SOAP service: it parses the XML it receives and answers
// the operations GetUser and CreateUser in SOAP 1.1 or 1.2 (as it was
// called), with a Fault for an unknown user; /fixed/NAME answers a canned
// fixture instead.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	last     received
	fixtures map[string]fixture
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	be := &backend{fixtures: map[string]fixture{}}
	be.Server = httptest.NewServer(http.HandlerFunc(be.serve))
	t.Cleanup(be.Close)
	return be
}

func (be *backend) fixture(name string, f fixture) {
	be.mu.Lock()
	defer be.mu.Unlock()
	be.fixtures[name] = f
}

func (be *backend) received() received {
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.last
}

func (be *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header,
		Body: string(body), ContentLength: r.ContentLength}
	version := soap11NS
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/soap+xml") {
		version = soap12NS
	}
	if len(body) > 0 && strings.Contains(r.Header.Get("Content-Type"), "xml") {
		var doc element
		if rec.ParseErr = xml.Unmarshal(body, &doc); rec.ParseErr == nil {
			rec.Operation = &doc
			if doc.XMLName.Local == "Envelope" {
				rec.Operation = nil
				if b := doc.child("Body"); b != nil && len(b.Children) > 0 {
					rec.Operation = &b.Children[0]
				}
			}
		}
	}
	be.mu.Lock()
	be.last = rec
	f, isFixture := be.fixtures[strings.TrimPrefix(r.URL.Path, "/fixed/")]
	be.mu.Unlock()

	if strings.HasPrefix(r.URL.Path, "/fixed/") && isFixture {
		w.Header().Set("Content-Type", f.contentType)
		for k, v := range f.header {
			w.Header().Set(k, v)
		}
		if !f.chunked {
			w.Header().Set("Content-Length", fmt.Sprint(len(f.body)))
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
		if f.chunked {
			w.(http.Flusher).Flush()
		}
		return
	}
	op := rec.Operation
	switch {
	case op == nil:
		soapAnswer(w, version, 500, fault(version, "Client", "no operation in the request"))
	case op.XMLName.Local == "GetUser":
		id := ""
		if c := op.child("id"); c != nil {
			id = c.Text
		}
		if id != "7" {
			soapAnswer(w, version, 500, fault(version, "Client", "User "+id+" not found"))
			return
		}
		soapAnswer(w, version, 200, `<GetUserResponse xmlns="`+usersNS+`"><user id="7"><name>Bob</name><email>bob@example.com</email></user></GetUserResponse>`)
	case op.XMLName.Local == "CreateUser":
		// Echo what was understood: the fields, as the service parsed them.
		var echo bytes.Buffer
		echo.WriteString(`<CreateUserResponse xmlns="` + usersNS + `"><id>42</id>`)
		for _, c := range op.Children {
			echo.WriteString("<" + c.XMLName.Local + ">")
			xml.EscapeText(&echo, []byte(c.Text))
			echo.WriteString("</" + c.XMLName.Local + ">")
		}
		echo.WriteString(`</CreateUserResponse>`)
		soapAnswer(w, version, 200, echo.String())
	default:
		soapAnswer(w, version, 500, fault(version, "Client", "unknown operation "+op.XMLName.Local))
	}
}

func soapAnswer(w http.ResponseWriter, version string, status int, body string) {
	ct := "text/xml; charset=utf-8"
	if version == soap12NS {
		ct = "application/soap+xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	io.WriteString(w, envelope(version, body))
}

func envelope(version, body string) string {
	return `<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="` + version + `"><soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

func fault(version, code, reason string) string {
	if version == soap12NS {
		return `<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code>` +
			`<soap:Reason><soap:Text xml:lang="en">` + reason + `</soap:Text></soap:Reason></soap:Fault>`
	}
	return `<soap:Fault><faultcode>soap:` + code + `</faultcode><faultstring>` + reason +
		`</faultstring><detail><trace>internal stack trace</trace></detail></soap:Fault>`
}

// gateway starts a gateway with one route "api" on "/" to be, with the
// xml-adapter settings given (a YAML flow or block at the policy's
// indentation), and route options (such as strip_path) if any.
func gateway(t *testing.T, be *backend, settings string) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Server+fmt.Sprintf(`
services:
  - name: be
    targets: [{url: %q}]
    retries: {attempts: 1}
routes:
  - name: api
    paths: ["/"]
    service: be
    policies:
      xml-adapter: %s
`, be.URL, settings), nil)
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request; headers are name, value pairs.
func do(t *testing.T, method, url string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func postJSON(t *testing.T, url, body string, headers ...string) answer {
	t.Helper()
	return do(t, "POST", url, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

// gatewayError is the gateway's JSON error, with a fault's code.
type gatewayError struct {
	Error struct {
		Status    int    `json:"status"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
		FaultCode string `json:"fault_code"`
	} `json:"error"`
}

func parseError(t *testing.T, body string) gatewayError {
	t.Helper()
	var e gatewayError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %q: %v", body, err)
	}
	return e
}
