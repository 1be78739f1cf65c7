package transform

import (
	"fmt"
	"strings"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// segKind is what one piece of a template stands for.
type segKind uint8

const (
	segLiteral segKind = iota
	segConsumer
	segConsumerGroups
	segClientIP
	segRequestID
	segRoute
	segPath
	segHeader // text: the header name
	segQuery  // text: the query parameter name
)

// templateNames are the names a template may use, for messages.
const templateNames = "{consumer}, {consumer.groups}, {client_ip}, {request_id}, {route}, {path}, {header.NAME}, {query.NAME}"

var simpleNames = map[string]segKind{
	"consumer":        segConsumer,
	"consumer.groups": segConsumerGroups,
	"client_ip":       segClientIP,
	"request_id":      segRequestID,
	"route":           segRoute,
	"path":            segPath,
}

type segment struct {
	kind segKind
	text string
}

// template is a value compiled at load time into literal text and the
// request values it names, so that rendering is one pass of appends.
type template struct {
	segs []segment
}

// compileTemplate parses s: "{name}" is replaced by a request value, "{{"
// and "}}" stand for literal braces.
func compileTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{kind: segLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return template{}, fmt.Errorf("%q: a lone '}' (write '}}' for a literal brace)", s)
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return template{}, fmt.Errorf("%q: '{' is not closed (write '{{' for a literal brace)", s)
			}
			name := s[i+1 : i+1+end]
			seg, err := templateSegment(name)
			if err != nil {
				return template{}, fmt.Errorf("%q: %w", s, err)
			}
			flush()
			t.segs = append(t.segs, seg)
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

func templateSegment(name string) (segment, error) {
	if k, ok := simpleNames[name]; ok {
		return segment{kind: k}, nil
	}
	if h, ok := strings.CutPrefix(name, "header."); ok {
		if !isToken(h) {
			return segment{}, fmt.Errorf("{%s}: %q is not a header name", name, h)
		}
		return segment{kind: segHeader, text: h}, nil
	}
	if q, ok := strings.CutPrefix(name, "query."); ok {
		if q == "" {
			return segment{}, fmt.Errorf("{%s}: the query parameter name is missing", name)
		}
		return segment{kind: segQuery, text: q}, nil
	}
	return segment{}, fmt.Errorf("unknown template {%s}; known: %s", name, templateNames)
}

// literal reports whether the template has no request values.
func (t *template) literal() bool {
	for _, s := range t.segs {
		if s.kind != segLiteral {
			return false
		}
	}
	return true
}

// render appends the template's value for the request x to dst. Absent
// values (no consumer, a header the request lacks) render as nothing.
func (t *template) render(dst []byte, x *policy.Exchange) []byte {
	for i := range t.segs {
		s := &t.segs[i]
		switch s.kind {
		case segLiteral:
			dst = append(dst, s.text...)
		case segConsumer:
			if c := x.Consumer; c != nil {
				dst = append(dst, c.Name...)
			}
		case segConsumerGroups:
			if c := x.Consumer; c != nil {
				dst = append(dst, c.HeaderGroups()...)
			}
		case segClientIP:
			if ip := x.ClientIP(); ip.IsValid() {
				dst = ip.AppendTo(dst)
			}
		case segRequestID:
			dst = append(dst, x.RequestID()...)
		case segRoute:
			dst = append(dst, x.Route()...)
		case segPath:
			dst = append(dst, x.Path()...)
		case segHeader:
			dst = append(dst, x.Header(s.text)...)
		case segQuery:
			dst = append(dst, x.Query(s.text)...)
		}
	}
	return dst
}
