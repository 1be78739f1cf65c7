package xmladapter_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/dataplane/policy"
	"github.com/valyala/fasthttp"
)

func compileChain(b *testing.B, settings map[string]any) *policy.Chain {
	chain, err := policy.Compile(config.Policies{"xml-adapter": settings}, &policy.Build{Route: "r"})
	if err != nil {
		b.Fatal(err)
	}
	return chain
}

var (
	benchPath   = []byte("/users")
	benchClient = netip.MustParseAddr("192.0.2.1")
	benchID     = []byte("0f9c2a7e-5b1d-4c36-9d0e-2f6a8b7c1d3e")
)

// soapUsers is a SOAP 1.1 answer of about 4 KiB: a list of users with
// attributes, repeated phones, nil and typed values, as a .NET or JAX-WS
// service writes it.
func soapUsers() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
		`<soap:Body><ListUsersResponse xmlns="http://example.com/users"><ListUsersResult>`)
	for i := 0; b.Len() < 4000; i++ {
		fmt.Fprintf(&b, `<user id="%d" status="active"><name>User %d &amp; Co</name><email>user%d@example.com</email>`+
			`<age>%d</age><active>true</active><manager xsi:nil="true"/>`+
			`<phones><phone type="home">+41 44 000 %02d</phone><phone type="work">+41 44 111 %02d</phone></phones></user>`,
			i, i, i, 20+i, i, i)
	}
	b.WriteString(`</ListUsersResult></ListUsersResponse></soap:Body></soap:Envelope>`)
	return []byte(b.String())
}

// BenchmarkXMLToJSON converts a 4 KiB SOAP answer to JSON in the response
// phase, with arrays and types set as a typical route would.
func BenchmarkXMLToJSON(b *testing.B) {
	chain := compileChain(b, map[string]any{"response": map[string]any{
		"from": "soap", "select": "ListUsersResult",
		"arrays": []any{"user", "user/phones/phone"},
		"types":  map[string]any{"user/@id": "number", "user/age": "number", "user/active": "boolean"},
	}})
	body := soapUsers()
	var ctx fasthttp.RequestCtx
	var x policy.Exchange
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		ctx.Response.Header.SetContentType("text/xml; charset=utf-8")
		ctx.Response.SetBody(body)
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		if rej := chain.Run(&x); rej != nil {
			b.Fatal(rej)
		}
		chain.Respond(&x)
	}
	if got := ctx.Response.Body(); !strings.HasPrefix(string(got), `{"user":[{"@id":0,"@status":"active","name":"User 0 & Co"`) {
		b.Fatalf("not converted: %.200s", got)
	}
}

// BenchmarkJSONToSOAP converts a 1 KiB JSON body to a SOAP 1.1 call.
func BenchmarkJSONToSOAP(b *testing.B) {
	chain := compileChain(b, map[string]any{"request": map[string]any{
		"to": "soap", "root": "CreateOrder", "namespace": "http://example.com/orders",
		"soap_action": "http://example.com/orders/CreateOrder",
	}})
	body := []byte(`{"@version":"2","customer":{"id":42,"name":"Bob & Co"},"items":[`)
	for len(body) < 1000 {
		body = append(body, `{"@sku":"A-100","qty":3,"price":12.5,"note":"gift <wrap>"},`...)
	}
	body = append(body[:len(body)-1], "]}"...)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	var x policy.Exchange
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBody(body)
		ctx.Request.Header.SetContentLength(len(body))
		x.Reset(&ctx, "r", "s", benchPath, benchClient, benchID)
		if rej := chain.Run(&x); rej != nil {
			b.Fatal(rej)
		}
	}
	if got := ctx.Request.Body(); !strings.Contains(string(got), `<CreateOrder xmlns="http://example.com/orders" version="2"><customer><id>42</id>`) {
		b.Fatalf("not converted: %.300s", got)
	}
}
