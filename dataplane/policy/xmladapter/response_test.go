package xmladapter_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/gatewaytest"
	"github.com/tollgate/tollgate/internal/testutil"
)

// userResponse is a SOAP answer with what the mapping has to handle:
// namespaces, attributes, repeated and single elements, xsi:nil, CDATA,
// entities, mixed content and a result wrapper.
const userResponse = `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <soap:Header><Trace xmlns="urn:trace">abc</Trace></soap:Header>
  <soap:Body>
    <u:GetUserResponse xmlns:u="http://example.com/users">
      <u:GetUserResult>
        <u:user id="7" xsi:type="u:User" u:status="active">
          <u:name>Bob &amp; Co</u:name>
          <u:age>42</u:age>
          <u:score>-1.5e3</u:score>
          <u:active>1</u:active>
          <u:admin>false</u:admin>
          <u:manager xsi:nil="true"/>
          <u:nickname/>
          <u:note><![CDATA[<b>bold</b>]]></u:note>
          <u:phones>
            <u:phone type="home">+41 1</u:phone>
            <u:phone type="work">+41 2</u:phone>
          </u:phones>
          <u:tags><u:tag>only</u:tag></u:tags>
          <u:groups>
          </u:groups>
          <u:bio>Hello <u:em>dear</u:em> world</u:bio>
          <u:code>007</u:code>
          <u:phones-count>2</u:phones-count>
        </u:user>
      </u:GetUserResult>
    </u:GetUserResponse>
    <ignored/>
  </soap:Body>
</soap:Envelope>`

func TestSOAPAnswerBecomesJSON(t *testing.T) {
	be := newBackend(t)
	be.fixture("user", fixture{status: 200, contentType: "text/xml; charset=utf-8", body: userResponse})
	g := gateway(t, be, `
        response:
          from: soap
          select: GetUserResult
          arrays: [user/tags/tag, /user/groups/group, user/missing/item]
          types: {user/age: number, user/score: number, user/active: boolean, user/admin: boolean,
                  user/@id: number, user/code: boolean, user/manager: number, user/nickname: number}`)

	a := do(t, "GET", g.URL+"/fixed/user", nil)
	want := `{"user":{"@id":7,"@status":"active",` +
		`"name":"Bob & Co","age":42,"score":-1.5e3,"active":true,"admin":false,"manager":null,"nickname":null,` +
		`"note":"<b>bold</b>",` +
		`"phones":{"phone":[{"@type":"home","#text":"+41 1"},{"@type":"work","#text":"+41 2"}]},` +
		`"tags":{"tag":["only"]},"groups":{"group":[]},` +
		`"bio":{"em":"dear","#text":"Hello  world"},"code":"007","phones-count":"2"}}`
	if a.status != 200 || a.body != want {
		t.Errorf("got %d\n%s\nwant\n%s", a.status, a.body, want)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cl := a.header.Get("Content-Length"); cl != strconv.Itoa(len(a.body)) {
		t.Errorf("Content-Length %s for %d bytes", cl, len(a.body))
	}
	if got := be.received().Header.Get("Accept"); got != "text/xml, application/soap+xml" {
		t.Errorf("upstream Accept %q", got)
	}

	// Without select, the operation's response element is the answer;
	// a select that finds nothing answers null.
	g = gateway(t, be, `{response: {from: soap}}`)
	if a := do(t, "GET", g.URL+"/fixed/user", nil); !strings.HasPrefix(a.body, `{"GetUserResult":{"user":{"@id":"7",`) {
		t.Errorf("without select: %s", a.body)
	}
	g = gateway(t, be, `{response: {from: soap, select: GetUserResult/nobody}}`)
	if a := do(t, "GET", g.URL+"/fixed/user", nil); a.status != 200 || a.body != "null" {
		t.Errorf("select of nothing: %d %s", a.status, a.body)
	}
}

// With strip_namespaces: false, names keep their prefixes and namespace
// declarations are attributes.
func TestNamespacesKept(t *testing.T) {
	be := newBackend(t)
	be.fixture("ns", fixture{status: 200, contentType: "application/xml", body: `<a:list xmlns:a="urn:a" xmlns="urn:d" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
		`<a:item a:id="1">x</a:item><item>y</item><a:item xsi:nil="true"/><b:other xmlns:b="urn:b" xsi:type="b:T">z</b:other></a:list>`})
	g := gateway(t, be, `{response: {from: xml, strip_namespaces: false, arrays: ["b:other"]}}`)

	a := do(t, "GET", g.URL+"/fixed/ns", nil)
	want := `{"@xmlns:a":"urn:a","@xmlns":"urn:d","@xmlns:xsi":"http://www.w3.org/2001/XMLSchema-instance",` +
		`"a:item":[{"@a:id":"1","#text":"x"},null],"item":"y","b:other":[{"@xmlns:b":"urn:b","@xsi:type":"b:T","#text":"z"}]}`
	if a.body != want {
		t.Errorf("got\n%s\nwant\n%s", a.body, want)
	}

	// Stripped (the default), a.item and item are one name.
	g = gateway(t, be, `{response: {from: xml}}`)
	if a := do(t, "GET", g.URL+"/fixed/ns", nil); a.body != `{"item":[{"@id":"1","#text":"x"},"y",null],"other":"z"}` {
		t.Errorf("stripped: %s", a.body)
	}
}

// A SOAP Fault is the gateway's JSON error with the fault's text; its
// detail (often internals) is not passed on.
func TestSOAPFaultBecomesGatewayError(t *testing.T) {
	be := newBackend(t)
	g := gateway(t, be, `{request: {to: soap, root: GetUser, namespace: "http://example.com/users"}, response: {}}`)

	a := postJSON(t, g.URL+"/users", `{"id": 404}`, "X-Request-ID", "rid-1")
	e := parseError(t, a.body)
	if a.status != 502 || e.Error.Status != 502 || e.Error.Code != "upstream_fault" || e.Error.Message != "User 404 not found" ||
		e.Error.FaultCode != "soap:Client" || e.Error.RequestID != "rid-1" {
		t.Errorf("fault: %d %s", a.status, a.body)
	}
	if strings.Contains(a.body, "stack trace") || a.header.Get("Content-Type") != "application/json" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("fault answer: %v %s", a.header, a.body)
	}

	// fault_status maps it; SOAP 1.2 faults say it in Reason/Text.
	g = gateway(t, be, `{request: {to: soap, soap_version: "1.2", root: GetUser}, response: {fault_status: 404}}`)
	a = postJSON(t, g.URL+"/users", `{"id": 5}`)
	e = parseError(t, a.body)
	if a.status != 404 || e.Error.Status != 404 || e.Error.Message != "User 5 not found" || e.Error.FaultCode != "soap:Sender" {
		t.Errorf("SOAP 1.2 fault with fault_status: %d %s", a.status, a.body)
	}
}

// Answers that are not XML, too large, without a length or compressed go
// out as they came.
func TestAnswersPassedThrough(t *testing.T) {
	be := newBackend(t)
	big := "<r>" + strings.Repeat("<i>0123456789</i>", 300) + "</r>" // about 5 KiB
	be.fixture("json", fixture{status: 200, contentType: "application/json", body: `{"already":"json"}`})
	be.fixture("html", fixture{status: 503, contentType: "text/html", body: `<html><body>down</body></html>`})
	be.fixture("big", fixture{status: 200, contentType: "application/xml", body: big})
	be.fixture("chunked", fixture{status: 200, contentType: "application/xml", body: "<r><i>1</i></r>", chunked: true})
	be.fixture("small", fixture{status: 200, contentType: "application/xml", body: "<r><i>1</i></r>"})
	g := gateway(t, be, `{response: {from: xml, max_body_bytes: 4096}}`)

	for _, c := range []struct{ path, ct, body string }{
		{"/fixed/json", "application/json", `{"already":"json"}`},
		{"/fixed/html", "text/html", `<html><body>down</body></html>`},
		{"/fixed/big", "application/xml", big},
		{"/fixed/chunked", "application/xml", "<r><i>1</i></r>"},
	} {
		a := do(t, "GET", g.URL+c.path, nil)
		if a.body != c.body || a.header.Get("Content-Type") != c.ct {
			t.Errorf("%s: %d %s %.60s, want it untouched", c.path, a.status, a.header.Get("Content-Type"), a.body)
		}
	}
	if a := do(t, "GET", g.URL+"/fixed/small", nil); a.body != `{"i":"1"}` {
		t.Errorf("a small answer is converted: %s", a.body)
	}
}

// An XML error keeps its status; a converted answer's entity tag becomes
// weak (the JSON is another representation) and byte ranges no longer
// apply.
func TestConvertedAnswerHeaders(t *testing.T) {
	be := newBackend(t)
	be.fixture("err", fixture{status: 409, contentType: "application/problem+xml", body: `<problem><title>taken</title></problem>`})
	be.fixture("tagged", fixture{status: 200, contentType: "text/xml", body: `<r><v>1</v></r>`,
		header: map[string]string{"ETag": `"abc"`, "Accept-Ranges": "bytes", "X-Kept": "yes"}})
	be.fixture("weak", fixture{status: 200, contentType: "text/xml", body: `<r/>`, header: map[string]string{"ETag": `W/"w"`}})
	g := gateway(t, be, `{response: {from: xml}}`)

	if a := do(t, "GET", g.URL+"/fixed/err", nil); a.status != 409 || a.body != `{"title":"taken"}` {
		t.Errorf("XML error: %d %s", a.status, a.body)
	}
	a := do(t, "GET", g.URL+"/fixed/tagged", nil)
	if a.body != `{"v":"1"}` || strings.Join(a.header.Values("ETag"), "|") != `W/"abc"` || a.header.Get("Accept-Ranges") != "" || a.header.Get("X-Kept") != "yes" {
		t.Errorf("tagged: %s %v", a.body, a.header)
	}
	if a := do(t, "GET", g.URL+"/fixed/weak", nil); a.body != `""` || a.header.Get("ETag") != `W/"w"` {
		t.Errorf("weak: %s %v", a.body, a.header)
	}
}

// The gateway's own errors are JSON already and go out as they are.
func TestGatewayErrorsUntouched(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Server+`
services:
  - name: down
    targets: [{url: "http://`+testutil.ClosedPort(t)+`"}]
    retries: {attempts: 1}
routes:
  - name: down
    paths: ["/"]
    service: down
    policies:
      xml-adapter: {request: {to: soap, root: GetUser}, response: {}}
`, nil)
	a := postJSON(t, g.URL+"/users", `{"id": 7}`)
	if e := parseError(t, a.body); a.status != 502 || e.Error.Code != "upstream_unavailable" {
		t.Errorf("got %d %s", a.status, a.body)
	}
}

// XML that cannot be converted safely is refused with a 502, never passed
// to a JSON client: a DOCTYPE (entity expansion), too deep, too many
// elements, malformed, or not the SOAP that was promised.
func TestUnconvertibleXMLIsRefused(t *testing.T) {
	be := newBackend(t)
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`
	for name, body := range map[string]string{
		"bomb":      bomb,
		"deep":      strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20),
		"wide":      "<r>" + strings.Repeat("<i/>", 101) + "</r>",
		"attrs":     "<r>" + strings.Repeat(`<i x="1" y="2"/>`, 40) + "</r>", // 41 elements, 80 attributes
		"malformed": "<r><a></r>",
		"entity":    "<r>&undefined;</r>",
		"tworoots":  "<r/><r/>",
		"latin1":    `<?xml version="1.0" encoding="ISO-8859-1"?><r>caf` + "\xe9" + `</r>`,
		"notsoap":   "<Envelope><Body><x/></Body></Envelope>",
	} {
		ct := "application/xml"
		if name == "notsoap" {
			ct = "text/xml"
		}
		be.fixture(name, fixture{status: 200, contentType: ct, body: body})
	}
	g := gateway(t, be, `{response: {from: xml, max_depth: 10, max_elements: 100}}`)
	gs := gateway(t, be, `{response: {from: soap}}`)

	for _, name := range []string{"bomb", "deep", "wide", "attrs", "malformed", "entity", "tworoots", "latin1", "notsoap"} {
		url := g.URL
		if name == "notsoap" {
			url = gs.URL
		}
		a := do(t, "GET", url+"/fixed/"+name, nil)
		e := parseError(t, a.body)
		if a.status != 502 || e.Error.Code != "upstream_invalid_response" {
			t.Errorf("%s: %d %s, want 502 upstream_invalid_response", name, a.status, a.body)
		}
	}
	// Within the bounds, the same shapes are fine.
	be.fixture("ok", fixture{status: 200, contentType: "application/xml", body: strings.Repeat("<a>", 10) + "x" + strings.Repeat("</a>", 10)})
	if a := do(t, "GET", g.URL+"/fixed/ok", nil); a.body != `{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":"x"}}}}}}}}}` {
		t.Errorf("10 levels: %d %s", a.status, a.body)
	}
}
