package aggregate

import (
	"errors"
	"fmt"
	"strings"
)

// Source says where a placeholder takes its value.
type Source uint8

const (
	// Literal is text copied as written.
	Literal Source = iota
	// Consumer is {consumer}: the authenticated consumer's name.
	Consumer
	// Param is {name}: a path parameter of the route.
	Param
	// Field is {KEY.FIELD}: a field of the answer of the call named KEY.
	Field
)

// Template is a parsed call path: literal text and placeholders. Values are
// percent-encoded for where they stand, so a value can never add a path
// segment or a query parameter of its own.
type Template struct {
	raw      string
	parts    []part
	hasQuery bool
}

type part struct {
	source  Source
	text    string   // literal text, parameter name or call key
	field   []string // Field: path of the value in the answer
	call    int      // Field: index of the call, set by Compile
	inQuery bool     // after the "?": escaped as a query value
}

// ParseTemplate parses a call path such as "/users/{consumer}" or
// "/orders?user={profile.id}&page=1".
func ParseTemplate(s string) (*Template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("path must start with \"/\", got %q", s)
	}
	t := &Template{raw: s}
	lit := 0 // start of the pending literal text
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '?' && !t.hasQuery:
			t.hasQuery = true
		case c == '#':
			return nil, errors.New("a fragment (#) cannot be sent to a backend")
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, errors.New(`"%" must start an escape of two hex digits, such as %20`)
			}
		case c >= 0x80:
			return nil, errors.New("non-ASCII characters must be percent-encoded (as UTF-8)")
		case c <= ' ' || c == 0x7f || strings.IndexByte(`"<>\^`+"`"+`|`, c) >= 0:
			return nil, fmt.Errorf("character %q must be percent-encoded", rune(c))
		case c == '}':
			return nil, errors.New(`"}" without "{"`)
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("placeholder %q is not closed with \"}\"", s[i:])
			}
			name := s[i+1 : i+1+end]
			if strings.IndexByte(name, '{') >= 0 {
				return nil, fmt.Errorf("placeholder {%s} contains \"{\"", name)
			}
			p, err := parsePlaceholder(name)
			if err != nil {
				return nil, err
			}
			if lit < i {
				t.parts = append(t.parts, part{source: Literal, text: s[lit:i]})
			}
			p.inQuery = t.hasQuery
			t.parts = append(t.parts, p)
			i += end + 1
			lit = i + 1
		}
	}
	if lit < len(s) {
		t.parts = append(t.parts, part{source: Literal, text: s[lit:]})
	}
	return t, nil
}

// parsePlaceholder reads what stands between braces: "consumer", a
// parameter name, or KEY.FIELD with a dotted FIELD.
func parsePlaceholder(name string) (part, error) {
	key, rest, isField := strings.Cut(name, ".")
	if !isField {
		if !IsName(name) {
			return part{}, fmt.Errorf("placeholder {%s}: a name is a letter or \"_\" followed by letters, digits or \"_\"", name)
		}
		if name == "consumer" {
			return part{source: Consumer, text: name}, nil
		}
		return part{source: Param, text: name}, nil
	}
	if !IsKey(key) {
		return part{}, fmt.Errorf("placeholder {%s}: %q is not a call key", name, key)
	}
	field := strings.Split(rest, ".")
	for _, f := range field {
		if !isFieldName(f) {
			return part{}, fmt.Errorf("placeholder {%s}: each field after the key is a non-empty name of letters, digits, \"_\" or \"-\"", name)
		}
	}
	return part{source: Field, text: key, field: field}, nil
}

// IsName reports whether s can name a path parameter: a letter or "_"
// followed by letters, digits or "_" (the router's rule).
func IsName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !isLetter(c) && !(i > 0 && isDigit(c)) {
			return false
		}
	}
	return s != ""
}

// IsKey reports whether s can be a call key: a name that may also contain
// "-", and not the reserved "_errors".
func IsKey(s string) bool {
	if s == "" || s == ErrorsKey || isDigit(s[0]) || s[0] == '-' {
		return false
	}
	return isFieldName(s)
}

func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '_' && c != '-' && !isLetter(c) && !isDigit(c) {
			return false
		}
	}
	return s != ""
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isHex(c byte) bool    { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// HasQuery reports whether the template has a query of its own; the
// client's query is only passed on to calls that have none.
func (t *Template) HasQuery() bool { return t.hasQuery }

// Values gives the values of a request's placeholders. ok is false when
// there is none (no authenticated consumer, no such parameter, a field
// missing from the answer or not a string, number or boolean).
type Values interface {
	Consumer() (string, bool)
	Param(name string) (string, bool)
	Field(call int, path []string) (string, bool)
}

// ExpandError says why a template could not be filled.
type ExpandError struct {
	Placeholder string // as written, with braces
	Source      Source
	Key         string // Field: the call whose answer lacks the value
	Reason      string
}

func (e *ExpandError) Error() string { return e.Placeholder + ": " + e.Reason }

// Expand appends the path with every placeholder replaced by its value,
// percent-encoded. A value in the path may not be empty, "." or ".."
// (which would change which resource is called); in the query it may be
// empty.
func (t *Template) Expand(dst []byte, v Values) ([]byte, error) {
	for i := range t.parts {
		p := &t.parts[i]
		var val string
		var ok bool
		switch p.source {
		case Literal:
			dst = append(dst, p.text...)
			continue
		case Consumer:
			val, ok = v.Consumer()
		case Param:
			val, ok = v.Param(p.text)
		case Field:
			val, ok = v.Field(p.call, p.field)
		}
		if !ok {
			return dst, p.fail("has no value")
		}
		if !p.inQuery && (val == "" || val == "." || val == "..") {
			return dst, p.fail(fmt.Sprintf("value %q cannot stand in a path", val))
		}
		dst = appendEscaped(dst, val, p.inQuery)
	}
	return dst, nil
}

func (p *part) fail(reason string) error {
	e := &ExpandError{Source: p.source, Reason: reason}
	switch p.source {
	case Field:
		e.Key = p.text
		e.Placeholder = "{" + p.text + "." + strings.Join(p.field, ".") + "}"
	default:
		e.Placeholder = "{" + p.text + "}"
	}
	return e
}

const upperHex = "0123456789ABCDEF"

// appendEscaped percent-encodes s. In a path, letters, digits and
// "-._~$&+=:@" stay as they are (as url.PathEscape does); in a query only
// letters, digits and "-._~", so a value cannot start another parameter.
func appendEscaped(dst []byte, s string, query bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLetter(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
			!query && strings.IndexByte("$&+=:@", c) >= 0 {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}
