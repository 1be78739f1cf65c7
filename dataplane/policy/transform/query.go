package transform

import (
	"bytes"
	"maps"
	"slices"

	"github.com/tollgate/tollgate/dataplane/policy"
)

// queryEdits are add_query and remove_query, compiled.
type queryEdits struct {
	remove []string   // decoded names
	add    []queryAdd // by name
}

type queryAdd struct {
	name    string
	encoded []byte // the name percent-encoded, with its '='
	value   template
}

func (q *queryEdits) empty() bool { return len(q.remove) == 0 && len(q.add) == 0 }

func compileQuery(add map[string]string, remove []string) (queryEdits, error) {
	q := queryEdits{remove: slices.Clone(remove)}
	for _, name := range slices.Sorted(maps.Keys(add)) {
		t, err := compileTemplate(add[name])
		if err != nil {
			return queryEdits{}, err
		}
		enc := append(appendQueryEscaped(nil, []byte(name)), '=')
		q.add = append(q.add, queryAdd{name: name, encoded: enc, value: t})
	}
	return q, nil
}

// apply rewrites the query string sent upstream: parameters named in
// remove_query or add_query go, the others stay byte for byte in their
// order, then each add_query parameter is appended, percent-encoded. The
// query is replaced only when something changed.
func (q *queryEdits) apply(x *policy.Exchange, s *scratch) {
	raw := x.RawQuery()
	out := s.tmp[:0]
	changed := len(q.add) > 0
	for len(raw) > 0 {
		var param []byte
		if i := bytes.IndexByte(raw, '&'); i >= 0 {
			param, raw = raw[:i], raw[i+1:]
		} else {
			param, raw = raw, nil
		}
		if len(param) == 0 {
			continue // "a=1&&b=2": an empty parameter says nothing
		}
		key := param
		if i := bytes.IndexByte(param, '='); i >= 0 {
			key = param[:i]
		}
		var kb [128]byte
		if q.drops(decodeQueryComponent(kb[:0], key)) {
			changed = true
			continue
		}
		if len(out) > 0 {
			out = append(out, '&')
		}
		out = append(out, param...)
	}
	for i := range q.add {
		a := &q.add[i]
		start := len(s.buf)
		s.buf = a.value.render(s.buf, x)
		if len(out) > 0 {
			out = append(out, '&')
		}
		out = append(out, a.encoded...)
		out = appendQueryEscaped(out, s.buf[start:])
		s.buf = s.buf[:start]
	}
	s.tmp = out
	if changed {
		x.SetRawQuery(out)
	}
}

// drops reports whether the parameter named name (decoded) is removed or
// replaced.
func (q *queryEdits) drops(name []byte) bool {
	for _, r := range q.remove {
		if string(name) == r {
			return true
		}
	}
	for i := range q.add {
		if string(name) == q.add[i].name {
			return true
		}
	}
	return false
}

// decodeQueryComponent appends the decoded form of a query component:
// %XX escapes and '+' as a space, as HTML forms encode them. A malformed
// escape is kept as written.
func decodeQueryComponent(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// appendQueryEscaped percent-encodes s as a query name or value: only the
// unreserved characters of RFC 3986 stay as they are, so '&', '=', '+',
// '#' and spaces (%20) can never change how the query reads.
func appendQueryEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0xf])
	}
	return dst
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
