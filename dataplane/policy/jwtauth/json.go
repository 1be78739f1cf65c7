package jwtauth

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The token's header and claims are small JSON objects read once each on
// the hot path. Rather than decode them into maps (dozens of allocations),
// the document is checked with json.Valid, which does not allocate, and
// then walked in place: members come out as raw slices of the decoded
// bytes, and only the values the policy reads are converted. Because the
// walker only ever sees valid JSON it stays simple; it still checks its
// bounds, so that a mistake in it can only refuse a token, never panic.

// object walks the members of a JSON object that json.Valid accepted.
type object struct {
	data []byte
	pos  int
}

func openObject(data []byte) (object, bool) {
	if !json.Valid(data) {
		return object{}, false
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return object{}, false
	}
	return object{data: data, pos: i + 1}, true
}

// next returns the next member: its key decoded and its value raw. ok is
// false at the end of the object.
func (o *object) next() (key, value []byte, ok bool) {
	d := o.data
	i := skipSpace(d, o.pos)
	if i < len(d) && d[i] == ',' {
		i = skipSpace(d, i+1)
	}
	if i >= len(d) || d[i] != '"' {
		return nil, nil, false
	}
	end := skipString(d, i)
	if end > len(d) {
		return nil, nil, false
	}
	key, ok = jsonString(d[i:end])
	if !ok {
		return nil, nil, false
	}
	i = skipSpace(d, end)
	if i >= len(d) || d[i] != ':' {
		return nil, nil, false
	}
	i = skipSpace(d, i+1)
	vend := skipValue(d, i)
	if vend > len(d) || vend <= i {
		return nil, nil, false
	}
	o.pos = vend
	return key, d[i:vend], true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at d[i] (a quote).
func skipString(d []byte, i int) int {
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(d) + 1
}

// skipValue returns the index after the value starting at d[i].
func skipValue(d []byte, i int) int {
	if i >= len(d) {
		return len(d) + 1
	}
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				j = skipString(d, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(d) + 1
	}
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// jsonString returns the content of a raw JSON string. Without escapes it
// is a slice of raw; with them (rare in tokens) it is decoded into a copy.
func jsonString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

// jsonNumber parses a raw JSON number (NumericDate claims).
func jsonNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// forEachString calls fn with each string of a raw JSON string or array of
// strings (aud); other values are skipped.
func forEachString(raw []byte, fn func(s []byte) bool) {
	if len(raw) == 0 {
		return
	}
	switch raw[0] {
	case '"':
		if s, ok := jsonString(raw); ok {
			fn(s)
		}
	case '[':
		for i := skipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
			end := skipValue(raw, i)
			if end > len(raw) || end <= i {
				return
			}
			if raw[i] == '"' {
				if s, ok := jsonString(raw[i:end]); ok && !fn(s) {
					return
				}
			}
			i = skipSpace(raw, end)
			if i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
	}
}

// appendPlain appends a claim's value as a header value: strings without
// quotes, numbers and booleans as written, array items joined with ", ",
// objects as compact JSON. null appends nothing and reports false.
func appendPlain(dst, raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return dst, false
	}
	switch raw[0] {
	case '"':
		s, ok := jsonString(raw)
		return append(dst, s...), ok
	case 'n':
		return dst, false
	case '[':
		first := true
		for i := skipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
			end := skipValue(raw, i)
			if end > len(raw) || end <= i {
				return dst, false
			}
			if !first {
				dst = append(dst, ',', ' ')
			}
			first = false
			if raw[i] == '[' {
				dst = appendCompact(dst, raw[i:end])
			} else {
				dst, _ = appendPlain(dst, raw[i:end])
			}
			i = skipSpace(raw, end)
			if i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
		return dst, true
	case '{':
		return appendCompact(dst, raw), true
	}
	return append(dst, raw...), true
}

func appendCompact(dst, raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append(dst, raw...)
	}
	return append(dst, b.Bytes()...)
}
