package xmladapter_test

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/dataplane/policy/xmladapter"
)

var xmlSeeds = []string{
	userResponse,
	envelope(soap11NS, `<x:R xmlns:x="urn:x"><a>1</a><a>2</a><b c="d"/></x:R>`),
	envelope(soap12NS, fault(soap12NS, "Sender", "no")),
	envelope(soap11NS, fault(soap11NS, "Server", "boom")),
	envelope(soap11NS, ""),
	`<r>text<a/>more<![CDATA[x]]><!-- c --><?pi x?></r>`,
	`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>`,
	`<r xmlns:p="urn:p" p:a="1" xmlns="urn:d"><p:b/><b/></r>`,
	`<r>&amp;&lt;&#x1F600;&#65;</r>`,
	"\xEF\xBB\xBF<r/>",
	`<a><b></a></b>`,
	`<r a="1" a="2"/>`,
	`<r xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>`,
}

// fuzzSettings are settings the fuzzer runs every input through: both
// kinds, namespaces kept or not, arrays, types and select on common names,
// and small bounds.
var fuzzSettings = func() []*xmladapter.ResponseSettings {
	keep := false
	rules := func(s *xmladapter.ResponseSettings) *xmladapter.ResponseSettings {
		s.Arrays = []string{"a", "user/phones/phone", "b/c"}
		s.Types = map[string]string{"a": "number", "b/@c": "boolean", "r/#text": "number"}
		return s
	}
	return []*xmladapter.ResponseSettings{
		{From: "xml"},
		{From: "soap"},
		rules(&xmladapter.ResponseSettings{From: "xml", MaxDepth: 8, MaxElements: 50}),
		rules(&xmladapter.ResponseSettings{From: "soap", Select: "GetUserResult"}),
		{From: "xml", StripNamespaces: &keep},
	}
}()

// Any input converts to valid JSON, a fault or an error; nothing panics.
func FuzzXMLToJSON(f *testing.F) {
	for _, s := range xmlSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, s := range fuzzSettings {
			out, fault, err := xmladapter.XMLToJSON(in, s)
			if err != nil || fault {
				continue
			}
			if !json.Valid(out) {
				t.Fatalf("%q with %+v gave invalid JSON %q", in, s, out)
			}
		}
	})
}

// Any JSON converts to well-formed XML of one element, or to an error
// saying why it cannot.
func FuzzJSONToXML(f *testing.F) {
	for _, s := range []string{
		`{}`, `"s"`, `1`, `null`, `[1]`,
		`{"a": 1, "b": [true, false, null, -1.5e3, "x\"y\\u00e9<&>"], "c": {"@d": "e", "#text": "t"}}`,
		`{"@a": "\u0000\r\n\t", "a": {"b": [{"c": 1}, {"c": 2}]}, "\u00e9t\u00e9": "\ud83d\ude00\udc00"}`,
		`{"a": [[1]]}`, `{"1": 1}`, `{"@a": 1, "@a": 2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := xmladapter.JSONToXML(in)
		if err != nil {
			return
		}
		d := xml.NewDecoder(strings.NewReader(string(out)))
		roots, depth := 0, 0
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%q gave malformed XML %q: %v", in, out, err)
			}
			switch tok.(type) {
			case xml.StartElement:
				if depth == 0 {
					roots++
				}
				depth++
			case xml.EndElement:
				depth--
			}
		}
		if roots != 1 {
			t.Fatalf("%q gave %d top elements: %q", in, roots, out)
		}
	})
}
