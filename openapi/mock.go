package openapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// MockResponse is the answer a mock route gives for an operation of the
// document at specPath: the status asked for (0: the operation's first
// documented 2xx), the response's headers that have examples, its content
// type and its example body. The body is the media type's example, else its
// first example (in document order), else one made from the schema's
// examples, defaults and enums, with placeholder values where the schema
// has none.
//
// It is meant for configuration time: the result is served as it is, for
// every request.
func MockResponse(specPath, operation string, status int) (int, map[string]string, []byte, error) {
	s, err := Load(specPath)
	if err != nil {
		return 0, nil, nil, err
	}
	op, err := s.Operation(operation)
	if err != nil {
		return 0, nil, nil, err
	}
	return op.MockResponse(status)
}

// MockResponse is the package's MockResponse for this operation.
func (o *Operation) MockResponse(status int) (int, map[string]string, []byte, error) {
	responses := o.Operation.Responses
	if responses == nil || responses.Len() == 0 {
		return 0, nil, nil, fmt.Errorf("operation %s documents no responses", o.Ref())
	}
	if status == 0 {
		status = firstSuccess(responses)
	}
	ref := o.response(status)
	if ref == nil {
		return 0, nil, nil, fmt.Errorf("operation %s documents no response for status %d (documented: %s)",
			o.Ref(), status, strings.Join(responses.Keys(), ", "))
	}
	resp := ref.Value
	headers := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(resp.Headers)) {
		h := resp.Headers[name]
		if h == nil || h.Value == nil {
			continue
		}
		switch strings.ToLower(name) {
		case "content-type", "content-length", "transfer-encoding":
			continue
		}
		if v, ok := parameterExample(&h.Value.Parameter); ok {
			headers[textproto.CanonicalMIMEHeaderKey(name)] = headerValue(v)
		}
	}
	if len(resp.Content) == 0 {
		return status, headers, nil, nil
	}
	mediaType := pickMediaType(resp.Content)
	mt := resp.Content[mediaType]
	value, err := mediaExample(mt)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("operation %s, status %d, %s: %v", o.Ref(), status, mediaType, err)
	}
	contentType, body, err := encodeExample(mediaType, value)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("operation %s, status %d, %s: %v", o.Ref(), status, mediaType, err)
	}
	headers["Content-Type"] = contentType
	return status, headers, body, nil
}

// response is the operation's response for status: its own, its range's
// ("2XX") or the default one; nil when there is none.
func (o *Operation) response(status int) *openapi3.ResponseRef {
	responses := o.Operation.Responses
	if responses == nil {
		return nil
	}
	ref := responses.Status(status)
	if ref == nil {
		ref = responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return nil
	}
	return ref
}

// firstSuccess is the lowest 2xx status an operation documents (a 2XX
// range counts as 200), else 200.
func firstSuccess(responses *openapi3.Responses) int {
	best := 0
	for _, key := range responses.Keys() {
		n, err := strconv.Atoi(key)
		if key == "2XX" {
			n, err = 200, nil
		}
		if err == nil && n >= 200 && n < 300 && (best == 0 || n < best) {
			best = n
		}
	}
	return cmp.Or(best, 200)
}

// pickMediaType prefers JSON, then the first media type in document order.
func pickMediaType(content openapi3.Content) string {
	keys := slices.Sorted(maps.Keys(content))
	slices.SortStableFunc(keys, func(a, b string) int {
		return cmp.Compare(line(content[a].Origin), line(content[b].Origin))
	})
	for _, k := range keys {
		if isJSON(k) {
			return k
		}
	}
	return keys[0]
}

func isJSON(mediaType string) bool {
	base, _, _ := strings.Cut(strings.ToLower(mediaType), ";")
	base = strings.TrimSpace(base)
	return base == "application/json" || strings.HasSuffix(base, "+json")
}

// errNoExample says a media type has nothing to build an example from.
var errNoExample = errors.New("no example and no schema to make one from")

func mediaExample(mt *openapi3.MediaType) (any, error) {
	if mt == nil {
		return nil, errNoExample
	}
	if mt.Example != nil {
		return mt.Example, nil
	}
	if len(mt.Examples) > 0 {
		return firstExample(mt.Examples)
	}
	if mt.Schema == nil {
		return nil, errNoExample
	}
	return sample(mt.Schema, 0), nil
}

// firstExample is the first of examples in document order.
func firstExample(examples openapi3.Examples) (any, error) {
	names := slices.Sorted(maps.Keys(examples))
	slices.SortStableFunc(names, func(a, b string) int {
		return cmp.Compare(exampleLine(examples[a]), exampleLine(examples[b]))
	})
	ex := examples[names[0]]
	if ex == nil || ex.Value == nil {
		return nil, fmt.Errorf("example %q is empty", names[0])
	}
	if ex.Value.Value == nil && ex.Value.ExternalValue != "" {
		return nil, fmt.Errorf("example %q has only an externalValue, which mocks do not fetch", names[0])
	}
	return ex.Value.Value, nil
}

func exampleLine(ref *openapi3.ExampleRef) int {
	if ref == nil || ref.Value == nil {
		return 0
	}
	return line(ref.Value.Origin)
}

// parameterExample is a header's example, from the header or its schema.
func parameterExample(p *openapi3.Parameter) (any, bool) {
	if p.Example != nil {
		return p.Example, true
	}
	if len(p.Examples) > 0 {
		if v, err := firstExample(p.Examples); err == nil && v != nil {
			return v, true
		}
	}
	if p.Schema != nil && p.Schema.Value != nil {
		s := p.Schema.Value
		for _, v := range []any{s.Example, s.Default} {
			if v != nil {
				return v, true
			}
		}
	}
	return nil, false
}

func headerValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// encodeExample renders an example as the body of its media type: JSON for
// JSON media types (and for structured values under a wildcard), a string
// example as it is for the others.
func encodeExample(mediaType string, value any) (contentType string, body []byte, err error) {
	contentType = mediaType
	if strings.Contains(mediaType, "*") {
		contentType = "application/json"
		if _, ok := value.(string); ok {
			contentType = "text/plain; charset=utf-8"
		}
	}
	if s, ok := value.(string); ok && !isJSON(contentType) {
		return contentType, []byte(s), nil
	}
	body, err = json.Marshal(value)
	if err != nil {
		return "", nil, fmt.Errorf("example cannot be written as JSON: %v", err)
	}
	return contentType, body, nil
}

// maxSampleDepth bounds the example made from a recursive schema.
const maxSampleDepth = 8

// sample makes a value that fits ref, from what the schema says: its
// example, default, const or first enum value, else its properties or
// items, else a placeholder for its type. nil means "leave it out".
func sample(ref *openapi3.SchemaRef, depth int) any {
	if ref == nil || ref.Value == nil || depth > maxSampleDepth {
		return nil
	}
	s := ref.Value
	switch {
	case s.Example != nil:
		return s.Example
	case len(s.Examples) > 0:
		return s.Examples[0]
	case s.Default != nil:
		return s.Default
	case s.Const != nil:
		return s.Const
	case len(s.Enum) > 0:
		return s.Enum[0]
	case len(s.AllOf) > 0:
		merged := map[string]any{}
		for _, sub := range s.AllOf {
			v := sample(sub, depth+1)
			m, ok := v.(map[string]any)
			if !ok {
				return v // not objects: the first part decides
			}
			maps.Copy(merged, m)
		}
		maps.Copy(merged, properties(s, depth))
		return merged
	case len(s.OneOf) > 0:
		return sample(s.OneOf[0], depth+1)
	case len(s.AnyOf) > 0:
		return sample(s.AnyOf[0], depth+1)
	}
	switch {
	case s.Type.Includes(openapi3.TypeObject) || s.Type.IsEmpty() && len(s.Properties) > 0:
		return properties(s, depth)
	case s.Type.Includes(openapi3.TypeArray):
		if item := sample(s.Items, depth+1); item != nil {
			return []any{item}
		}
		return []any{}
	case s.Type.Includes(openapi3.TypeString):
		return sampleString(s.Format)
	case s.Type.Includes(openapi3.TypeInteger):
		if s.Min != nil {
			return int64(*s.Min)
		}
		return 0
	case s.Type.Includes(openapi3.TypeNumber):
		if s.Min != nil {
			return *s.Min
		}
		return 0
	case s.Type.Includes(openapi3.TypeBoolean):
		return false
	}
	return nil
}

// properties samples an object's properties, leaving out the write-only
// ones (a response never carries them).
func properties(s *openapi3.Schema, depth int) map[string]any {
	m := make(map[string]any, len(s.Properties))
	for name, p := range s.Properties {
		if p == nil || p.Value == nil || p.Value.WriteOnly {
			continue
		}
		if v := sample(p, depth+1); v != nil {
			m[name] = v
		}
	}
	return m
}

func sampleString(format string) string {
	switch format {
	case "date":
		return "2026-01-01"
	case "date-time":
		return "2026-01-01T00:00:00Z"
	case "time":
		return "00:00:00Z"
	case "email":
		return "user@example.com"
	case "uuid":
		return "00000000-0000-4000-8000-000000000000"
	case "uri", "url":
		return "https://example.com/"
	case "hostname":
		return "example.com"
	case "ipv4":
		return "192.0.2.1"
	case "ipv6":
		return "2001:db8::1"
	case "byte":
		return "c3RyaW5n"
	}
	return "string"
}
