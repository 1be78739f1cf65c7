package xmladapter_test

import (
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

func TestSettingsErrorsNameFileLineAndColumn(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      xml-adapter:
        request:
          to: json
          root: "1GetUser"
          namespace: "not a uri"
          soap_version: 2
          soap_action: "a\"b"
          max_body_bytes: -1
          params_from: [query, cookie]
          params: [id, "bad name", id]
        response:
          arrays: ["user//phone", "user/@id"]
          types: {user/age: integer, "user/p:x": number}
          fault_status: 200
          max_depth: 5000
  - name: r2
    paths: ["/2"]
    service: be
    policies:
      xml-adapter:
        request:
          to: soap
          prefix: soap
          namespace: "urn:x"
          body_template: "<a>{x</a>"
  - name: r3
    paths: ["/3"]
    service: be
    policies:
      xml-adapter:
        request:
          to: soap
          body_template: "<{name}/>"
        response: {from: xml, fault_status: 500, select: "a b"}
  - name: r4
    paths: ["/4"]
    service: be
    policies:
      xml-adapter: {}
  - name: r5
    paths: ["/5"]
    service: be
    policies:
      xml-adapter:
        request: {to: xml, root: x, params_from: path, path_pattern: "/users/{id}/{id}"}
        response: {}
`
	_, err := config.Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{
		`t.yaml:11:11: "json" is neither xml nor soap`,
		`t.yaml:12:11: "1GetUser" is not an XML element name`,
		`t.yaml:13:11: "not a uri" is not an absolute URI`,
		`t.yaml:14:11: "2" is not a SOAP version: 1.1 or 1.2`,
		`t.yaml:15:11: "a\"b": an action URI has no quotes`,
		`t.yaml:16:11: must be positive`,
		`t.yaml:17:32: cookie is neither query nor path`,
		`t.yaml:18:24: "bad name" is not an XML element name`,
		`t.yaml:18:36: "id" is listed twice`,
		`t.yaml:20:20: "user//phone": segment "" is not an element name`,
		`t.yaml:20:35: "user/@id": segment "@id" is not an element name`,
		`t.yaml:21:19: "integer" is not a type: number, boolean or string`,
		`t.yaml:21:38: "user/p:x": segment "p:x" has a prefix, which strip_namespaces: true removes`,
		`t.yaml:22:11: 200 is not an error status (400 to 599)`,
		`t.yaml:23:11: 5000 is more than the most allowed, 1000`,
		`t.yaml:31:11: "soap" is the SOAP envelope's own prefix`,
		`t.yaml:32:11: body_template declares its own namespaces`,
		`t.yaml:33:11: '{' at offset 3 is not closed`,
		`t.yaml:41:11: not well-formed XML once filled (placeholders may stand only in text and attribute values)`,
		`t.yaml:42:31: only for from: soap (plain XML has no faults)`,
		`t.yaml:42:50: "a b": segment "a b" is not an element name`,
		`t.yaml:47:7: set request, response or both`,
		`t.yaml:53:56: parameter {id} appears twice`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
}

func TestValidSettingsLoad(t *testing.T) {
	yaml := `services:
  - name: be
    targets: [{url: "http://127.0.0.1:1"}]
routes:
  - name: r
    paths: ["/"]
    service: be
    policies:
      xml-adapter:
        request:
          to: soap
          soap_version: 1.2
          root: GetUser
          namespace: "urn:example:users"
          prefix: u
          soap_action: "urn:example:users/GetUser"
          max_body_bytes: 65536
        response:
          max_body_bytes: 2097152
          arrays: [user/phones/phone]
          types: {user/age: number, user/@active: boolean, user/price/#text: number}
          strip_namespaces: true
          select: GetUserResult
          fault_status: 500
          max_depth: 32
          max_elements: 1000
  - name: t
    paths: ["/t"]
    service: be
    policies:
      xml-adapter:
        request:
          to: xml
          body_template: |
            <?xml version="1.0"?>
            <order id="{id}"><note>{note}</note></order>
        response: {from: xml, strip_namespaces: false, arrays: ["p:items/p:item"]}
`
	if _, err := config.Parse("t.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}
