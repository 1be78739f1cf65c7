package xmladapter

import (
	"strconv"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/jsonx"
)

// responseConv is the response section compiled.
type responseConv struct {
	soap        bool
	stripNS     bool
	accept      string // the Accept header sent upstream
	maxBody     int
	limits      xmlLimits
	faultStatus int
	rules       pathRules
	selectPath  []string
}

// soapFault is what a SOAP Fault says (views into the tree).
type soapFault struct {
	code, reason []byte
}

// convert appends the JSON form of an XML answer to dst: for SOAP, of the
// Body's first child (the operation's response), and with select, of the
// element it names below. A SOAP Fault is returned instead.
func (c *responseConv) convert(t *tree, body, dst []byte) ([]byte, *soapFault, error) {
	if err := t.parse(body, c.limits, c.stripNS); err != nil {
		return dst, nil, err
	}
	top := int32(0)
	if c.soap {
		env := &t.nodes[0]
		if env.local != "Envelope" || env.uri != soap11NS && env.uri != soap12NS {
			return dst, nil, errNotSOAP
		}
		b := t.child(0, "Body")
		if b == none || t.nodes[b].uri != env.uri {
			return dst, nil, errNotSOAP
		}
		if top = t.firstElement(b); top == none {
			return append(dst, "null"...), nil, nil // an empty Body
		}
		if n := &t.nodes[top]; n.local == "Fault" && n.uri == env.uri {
			return dst, t.fault(top), nil
		}
	}
	for _, name := range c.selectPath {
		if top = t.named(top, name); top == none {
			return append(dst, "null"...), nil, nil
		}
	}
	w := writer{t: t, rules: &c.rules}
	return w.value(dst, top), nil, nil
}

// named returns n's first child element with the JSON name, or none.
func (t *tree) named(n int32, name string) int32 {
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind == kindElement && t.nodes[c].name == name {
			return c
		}
	}
	return none
}

// fault reads a SOAP 1.1 (faultcode, faultstring) or 1.2 (Code/Value,
// Reason/Text) Fault.
func (t *tree) fault(n int32) *soapFault {
	f := &soapFault{}
	for c := t.nodes[n].first; c != none; c = t.nodes[c].next {
		if t.nodes[c].kind != kindElement {
			continue
		}
		switch t.nodes[c].local {
		case "faultcode":
			f.code = trimSpace(t.textOf(c))
		case "faultstring":
			f.reason = trimSpace(t.textOf(c))
		case "Code":
			if v := t.child(c, "Value"); v != none {
				f.code = trimSpace(t.textOf(v))
			}
		case "Reason":
			if v := t.child(c, "Text"); v != none {
				f.reason = trimSpace(t.textOf(v))
			}
		}
	}
	return f
}

// Codes of the errors the adapter answers with.
const (
	codeFault           = "upstream_fault"
	codeInvalidResponse = "upstream_invalid_response"
)

// maxFaultReason bounds the fault text passed on to the client.
const maxFaultReason = 1024

// appendError writes the gateway's JSON error; a fault adds its code.
func appendError(dst []byte, status int, code string, msg []byte, requestID []byte, faultCode []byte) []byte {
	dst = append(dst, `{"error":{"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"code":`...)
	dst = jsonx.AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = jsonx.AppendString(dst, b2s(msg))
	dst = append(dst, `,"request_id":`...)
	dst = jsonx.AppendString(dst, b2s(requestID))
	if len(faultCode) > 0 {
		dst = append(dst, `,"fault_code":`...)
		dst = jsonx.AppendString(dst, b2s(faultCode))
	}
	return append(dst, "}}\n"...)
}

var (
	defaultFaultReason  = []byte("the upstream service answered with a SOAP Fault")
	invalidResponseText = []byte("the upstream service answered XML that cannot be converted to JSON")
)

// faultMessage is the reason a fault gives, cut to maxFaultReason bytes at
// a character boundary.
func faultMessage(reason []byte) []byte {
	if len(reason) == 0 {
		return defaultFaultReason
	}
	if len(reason) > maxFaultReason {
		cut := maxFaultReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return reason
}
