package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/tollgate/tollgate/internal/jsonx"
)

// ErrorsKey is the field of the combined answer that lists the calls left
// out, with why. No call may use it as its key.
const ErrorsKey = "_errors"

// Result is how one call went, for the combined answer.
type Result struct {
	// Body is the call's JSON answer, used when Error is "". An empty body
	// stands for null.
	Body []byte
	// Status is the upstream's status, or the one the gateway would have
	// answered with (502, 503, 504), or 424 when the call was not made
	// because it needed an answer that failed.
	Status int
	// Error says why the call is left out; "" when it succeeded.
	Error string
}

// AppendAnswer appends the combined answer: one JSON object with each
// successful call's answer under its key, in the order of keys, and, when a
// call is left out, "_errors" mapping its key to {"status":..,"error":..}.
func AppendAnswer(dst []byte, keys []string, results []Result) []byte {
	dst = append(dst, '{')
	first := true
	failed := false
	for i, r := range results {
		if r.Error != "" {
			failed = true
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = jsonx.AppendString(dst, keys[i])
		dst = append(dst, ':')
		if body := bytes.TrimSpace(r.Body); len(body) > 0 {
			dst = append(dst, body...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	if failed {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, `"`+ErrorsKey+`":{`...)
		firstErr := true
		for i, r := range results {
			if r.Error == "" {
				continue
			}
			if !firstErr {
				dst = append(dst, ',')
			}
			firstErr = false
			dst = jsonx.AppendString(dst, keys[i])
			dst = append(dst, `:{"status":`...)
			dst = strconv.AppendInt(dst, int64(r.Status), 10)
			dst = append(dst, `,"error":`...)
			dst = jsonx.AppendString(dst, r.Error)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, '}', '\n')
}

// IsJSON reports whether body is one JSON value (an empty body counts, as
// null).
func IsJSON(body []byte) bool {
	return len(bytes.TrimSpace(body)) == 0 || json.Valid(body)
}

// Decode parses a JSON answer for Lookup, keeping numbers as written.
func Decode(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// Lookup finds the value at path in a decoded answer: object fields by
// name, array items by index ("items.0.id"). It returns the value as text
// when it is a string, a number (as written) or a boolean; an object, an
// array, null or a missing field has no text.
func Lookup(v any, path []string) (string, bool) {
	for _, name := range path {
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[name]; !ok {
				return "", false
			}
		case []any:
			i, err := strconv.Atoi(name)
			if err != nil || i < 0 || i >= len(node) {
				return "", false
			}
			v = node[i]
		default:
			return "", false
		}
	}
	switch s := v.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	case bool:
		return strconv.FormatBool(s), true
	}
	return "", false
}
