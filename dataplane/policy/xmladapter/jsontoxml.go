package xmladapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The JSON side of the mapping: which members are not elements.
const (
	attrPrefix = '@'
	textKey    = "#text"
)

// conversionError is a request body the mapping cannot express in XML; its
// text is the client's answer.
type conversionError string

func (e conversionError) Error() string { return string(e) }

func conversionErrorf(format string, args ...any) error {
	return conversionError(fmt.Sprintf(format, args...))
}

// xmlWriter writes JSON values (already checked to be JSON, within a depth
// bound, by jsonscan) as XML. It walks the JSON text itself rather than a
// decoded tree, so member order is kept and nothing is decoded twice.
type xmlWriter struct {
	out []byte
	// names are the attribute names of the element being opened, nameSet
	// the same once there are many.
	names   []string
	nameSet map[string]struct{}
}

// reset prepares w for another body, keeping its memory.
func (w *xmlWriter) reset() {
	clear(w.names)
	w.out, w.names, w.nameSet = w.out[:0], w.names[:0], nil
}

// element writes v as the element name: an object's "@" members become its
// attributes, "#text" its text and the others its children; an array
// repeats the element for each item; a scalar is its text; null writes
// nothing (optional elements are left out).
func (w *xmlWriter) element(name string, v []byte) error {
	switch v[0] {
	case 'n':
		return nil
	case '[':
		for it := newIter(v); ; {
			item, ok := it.item()
			if !ok {
				return nil
			}
			if item[0] == '[' {
				return conversionErrorf("member %q: an array in an array has no element name", name)
			}
			if err := w.element(name, item); err != nil {
				return err
			}
		}
	case '{':
		w.out = append(append(w.out, '<'), name...)
		if err := w.attributes(v); err != nil {
			return err
		}
		w.out = append(w.out, '>')
		if err := w.content(v, true); err != nil {
			return err
		}
	default:
		w.out = append(append(append(w.out, '<'), name...), '>')
		w.scalar(v, false)
	}
	w.out = append(append(append(w.out, '<', '/'), name...), '>')
	return nil
}

// attributes writes the "@" members of obj as attributes.
func (w *xmlWriter) attributes(obj []byte) error {
	clear(w.names)
	w.names, w.nameSet = w.names[:0], nil
	for it := newIter(obj); ; {
		key, v, ok := it.member()
		if !ok {
			return nil
		}
		name := decodeKey(key)
		if len(name) == 0 || name[0] != attrPrefix {
			continue
		}
		name = name[1:]
		switch {
		case !isNCName(name):
			return conversionErrorf("member %q: %q is not an XML attribute name", "@"+name, name)
		case v[0] == '{' || v[0] == '[':
			return conversionErrorf("member %q: an attribute is a string, number or boolean", "@"+name)
		case v[0] == 'n':
			continue
		case w.seen(name):
			return conversionErrorf("member %q appears twice", "@"+name)
		}
		w.out = append(append(append(w.out, ' '), name...), '=', '"')
		w.scalar(v, true)
		w.out = append(w.out, '"')
	}
}

// maxLinearNames is how many attribute names are compared one by one
// before a set is worth making.
const maxLinearNames = 16

// seen records an attribute name, reporting whether the element already
// has it (XML forbids the same attribute twice). Past a few names they go
// in a set, so that a body with thousands of attributes costs no more
// than its length.
func (w *xmlWriter) seen(name string) bool {
	if w.nameSet != nil {
		if _, dup := w.nameSet[name]; dup {
			return true
		}
		w.nameSet[name] = struct{}{}
		return false
	}
	for _, n := range w.names {
		if n == name {
			return true
		}
	}
	w.names = append(w.names, name)
	if len(w.names) > maxLinearNames {
		w.nameSet = make(map[string]struct{}, 4*maxLinearNames)
		for _, n := range w.names {
			w.nameSet[n] = struct{}{}
		}
	}
	return false
}

// content writes the members of obj that are not attributes: "#text" as
// text, the others as elements, in their order. With attrs false an "@"
// member is an error: there is no element for it to go on.
func (w *xmlWriter) content(obj []byte, attrs bool) error {
	for it := newIter(obj); ; {
		key, v, ok := it.member()
		if !ok {
			return nil
		}
		name := decodeKey(key)
		switch {
		case len(name) > 0 && name[0] == attrPrefix:
			if !attrs {
				return conversionErrorf("member %q: an attribute needs an element; write the element in the template", name)
			}
		case name == textKey:
			switch v[0] {
			case '{', '[':
				return conversionErrorf("member %q: text is a string, number or boolean", textKey)
			case 'n':
			default:
				w.scalar(v, false)
			}
		case !isNCName(name):
			return conversionErrorf("member %q is not an XML element name", name)
		default:
			if err := w.element(name, v); err != nil {
				return err
			}
		}
	}
}

// scalar writes a string, number or boolean as text.
func (w *xmlWriter) scalar(v []byte, attr bool) {
	if v[0] == '"' {
		w.out = appendJSONString(w.out, v, attr)
		return
	}
	w.out = append(w.out, v...) // a number, true or false: nothing to escape
}

// appendJSONString appends the JSON string raw (with its quotes), decoded,
// as XML text or attribute value.
func appendJSONString(dst, raw []byte, attr bool) []byte {
	s := raw[1 : len(raw)-1]
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return appendEscaped(dst, b2s(s), attr)
		}
		dst = appendEscaped(dst, b2s(s[:i]), attr)
		r, n := unescapeJSON(s[i:])
		var buf [utf8.UTFMax]byte
		dst = appendEscaped(dst, b2s(buf[:utf8.EncodeRune(buf[:], r)]), attr)
		s = s[i+n:]
	}
	return dst
}

// unescapeJSON decodes the escape s starts with, returning its rune and
// length. A lone surrogate is U+FFFD, as encoding/json decodes it.
func unescapeJSON(s []byte) (rune, int) {
	switch s[1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(s[2:6])
		if 0xD800 <= r && r < 0xDC00 && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if lo := hex4(s[8:12]); 0xDC00 <= lo && lo < 0xE000 {
				return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
			}
		}
		if 0xD800 <= r && r < 0xE000 {
			return utf8.RuneError, 6
		}
		return r, 6
	}
	return rune(s[1]), 2 // '"', '\\' or '/'
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// decodeKey returns a member name (raw, with its quotes) as text. A name
// without escapes is viewed in place; the string must not outlive the body.
func decodeKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return b2s(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s) //nolint:errcheck // raw is a valid JSON string
	return s
}

// jsonIter walks the members of an object or the items of an array in
// JSON already known to be valid.
type jsonIter struct {
	b []byte
	i int
}

// newIter starts at the '{' or '[' of v.
func newIter(v []byte) jsonIter { return jsonIter{b: v, i: 1} }

// member returns the next member's raw name (with quotes) and value.
func (it *jsonIter) member() (key, v []byte, ok bool) {
	i := it.skip()
	if it.b[i] == '}' {
		return nil, nil, false
	}
	end := stringEnd(it.b, i)
	key = it.b[i:end]
	i = skipSpace(it.b, end) + 1 // past ':'
	i = skipSpace(it.b, i)
	vend := valueEnd(it.b, i)
	it.i = vend
	return key, it.b[i:vend], true
}

// item returns the next item.
func (it *jsonIter) item() (v []byte, ok bool) {
	i := it.skip()
	if it.b[i] == ']' {
		return nil, false
	}
	end := valueEnd(it.b, i)
	it.i = end
	return it.b[i:end], true
}

// skip moves past space and a ',' to the next member, item or the end.
func (it *jsonIter) skip() int {
	i := skipSpace(it.b, it.i)
	if it.b[i] == ',' {
		i = skipSpace(it.b, i+1)
	}
	it.i = i
	return i
}

// lookup returns the value at the member path in the object obj.
func lookup(obj []byte, path []string) ([]byte, bool) {
	v := obj
	for _, name := range path {
		if v[0] != '{' {
			return nil, false
		}
		found := false
		for it := newIter(v); ; {
			key, mv, ok := it.member()
			if !ok {
				break
			}
			if decodeKey(key) == name {
				v, found = mv, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return v, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset just past the string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the offset just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
