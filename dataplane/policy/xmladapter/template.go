package xmladapter

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// bodyTemplate is body_template compiled: literal XML and placeholders,
// each known at load to stand in text or in an attribute value.
type bodyTemplate struct {
	segs []templateSeg
	decl bool // the template starts with its own XML declaration
}

type templateSeg struct {
	lit  string   // literal XML, when path is nil
	name string   // the placeholder as written, for messages
	path []string // member names, or one parameter name
	attr bool     // in an attribute value
}

// Markers stand for the placeholders while the template is checked:
// private-use characters may be text or attribute values but never names,
// so a placeholder anywhere else makes the check fail.
const (
	markerStart = "\uE000"
	markerEnd   = "\uE001"
)

// compileTemplate parses a template: "{name}" or "{a/b}" stands for a
// request value, "{{" and "}}" for literal braces. The template with its
// placeholders filled must be one well-formed element (for soap, the Body's
// content, so without an XML declaration).
func compileTemplate(src string, soap bool) (*bodyTemplate, error) {
	t := &bodyTemplate{}
	var lit, probe strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, templateSeg{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '{' && i+1 < len(src) && src[i+1] == '{', c == '}' && i+1 < len(src) && src[i+1] == '}':
			lit.WriteByte(c)
			probe.WriteByte(c)
			i++
		case c == '}':
			return nil, fmt.Errorf("a lone '}' at offset %d (write '}}' for a literal brace)", i)
		case c == '{':
			end := strings.IndexByte(src[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("'{' at offset %d is not closed (write '{{' for a literal brace)", i)
			}
			name := src[i+1 : i+1+end]
			path := strings.Split(name, "/")
			for _, p := range path {
				if p == "" || strings.ContainsAny(p, "{ \t\r\n") {
					return nil, fmt.Errorf("{%s} is not a placeholder: member names separated by /", name)
				}
			}
			flush()
			probe.WriteString(markerStart + strconv.Itoa(len(t.segs)) + markerEnd)
			t.segs = append(t.segs, templateSeg{name: name, path: path})
			i += end + 1
		default:
			lit.WriteByte(c)
			probe.WriteByte(c)
		}
	}
	flush()
	if err := t.check(probe.String(), soap); err != nil {
		return nil, err
	}
	return t, nil
}

// check parses the template with markers in place of the placeholders:
// it must be well formed, and each marker must be found in text or in an
// attribute value, which says how its value is escaped.
func (t *bodyTemplate) check(probe string, soap bool) error {
	d := xml.NewDecoder(strings.NewReader(probe))
	found := make([]bool, len(t.segs))
	mark := func(s string, attr bool) {
		for {
			i := strings.Index(s, markerStart)
			if i < 0 {
				return
			}
			s = s[i+len(markerStart):]
			j := strings.Index(s, markerEnd)
			n, err := strconv.Atoi(s[:max(j, 0)])
			if j < 0 || err != nil || n >= len(t.segs) {
				return
			}
			t.segs[n].attr, found[n] = attr, true
			s = s[j:]
		}
	}
	depth, roots := 0, 0
	for first := true; ; first = false {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML once filled (placeholders may stand only in text and attribute values): %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			for _, a := range tk.Attr {
				mark(a.Value, true)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(tk)) != "" {
				return fmt.Errorf("text outside the element")
			}
			mark(string(tk), false)
		case xml.Directive:
			return fmt.Errorf("a DOCTYPE or other <! declaration is not allowed")
		case xml.ProcInst:
			if tk.Target == "xml" {
				if soap || !first || !strings.HasPrefix(probe, "<?xml") {
					return fmt.Errorf("an XML declaration may only start a template for to: xml (the envelope has its own)")
				}
				t.decl = true
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("the template must be one element, not %d", roots)
	}
	for i, seg := range t.segs {
		if seg.path != nil && !found[i] {
			return fmt.Errorf("{%s} must stand in text or an attribute value (not in a name, comment or processing instruction)", seg.name)
		}
	}
	return nil
}

// render writes the template for one request: a placeholder takes the
// parameter of its name, else the body member at its path. A string,
// number or boolean is written escaped; an object (in text) as elements;
// null or nothing found as nothing.
func (t *bodyTemplate) render(w *xmlWriter, body []byte, params []param) error {
	for i := range t.segs {
		seg := &t.segs[i]
		if seg.path == nil {
			w.out = append(w.out, seg.lit...)
			continue
		}
		if v, ok := paramValue(params, seg.path); ok {
			w.out = appendEscaped(w.out, v, seg.attr)
			continue
		}
		if len(body) == 0 || body[0] != '{' {
			continue
		}
		v, ok := lookup(body, seg.path)
		if !ok {
			continue
		}
		switch v[0] {
		case 'n':
		case '[':
			return conversionErrorf("{%s} is an array, which has no element name here; send an object", seg.name)
		case '{':
			if seg.attr {
				return conversionErrorf("{%s} is an attribute value: a string, number or boolean", seg.name)
			}
			if err := w.content(v, false); err != nil {
				return err
			}
		default:
			w.scalar(v, seg.attr)
		}
	}
	return nil
}

func paramValue(params []param, path []string) (string, bool) {
	if len(path) != 1 {
		return "", false
	}
	for _, p := range params {
		if p.name == path[0] {
			return p.value, true
		}
	}
	return "", false
}
