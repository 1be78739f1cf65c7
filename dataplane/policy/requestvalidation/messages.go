package requestvalidation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// describe turns a validation error into the message of the refusal:
// where (`query parameter "limit"`, `body.address`), then what is wrong,
// in a sentence a client developer can act on. kin-openapi's own messages
// dump the schema and the value; the value may be a secret, and the schema
// is in the document already.
func describe(err error, op *operation) string {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return firstLine(err.Error())
	}
	var where string
	switch {
	case re.Parameter != nil:
		where = fmt.Sprintf("%s parameter %q", re.Parameter.In, re.Parameter.Name)
	case re.RequestBody != nil:
		where = "body"
	default:
		return firstLine(re.Error())
	}
	var se *openapi3.SchemaError
	var verr *jsonschema.ValidationError
	var pe *openapi3filter.ParseError
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return where + ": is required"
	case errors.Is(re.Err, openapi3filter.ErrInvalidEmptyValue):
		return where + ": must not be empty"
	case errors.As(re.Err, &verr):
		return jsonSchemaMessage(where, verr, re.Parameter != nil)
	case errors.As(re.Err, &se):
		return schemaMessage(where, se, re.Parameter != nil)
	case strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
		ct := re.Input.Request.Header.Get("Content-Type")
		if ct == "" {
			return fmt.Sprintf("body: Content-Type is missing (expected %s)", op.accepts)
		}
		return fmt.Sprintf("body: content type %q is not accepted (expected %s)", ct, op.accepts)
	case errors.As(re.Err, &pe):
		return where + ": " + parseMessage(pe, re.RequestBody != nil)
	}
	reason := re.Reason
	if reason == "" && re.Err != nil {
		reason = re.Err.Error()
	}
	return where + ": " + firstLine(reason)
}

// schemaMessage names the field within the value that failed and why.
func schemaMessage(where string, se *openapi3.SchemaError, parameter bool) string {
	path := se.JSONPointer()
	if se.SchemaField == "required" && len(path) > 0 {
		// The message names the missing property; the path is its parent.
		path = path[:len(path)-1]
	}
	reason := se.Reason
	if reason == "" {
		reason = fmt.Sprintf("does not match the schema's %q", se.SchemaField)
	}
	return at(where, path, parameter) + ": " + cleanReason(reason)
}

// at names a field within a value: "body.address.city", or for a
// parameter `query parameter "filter" at tags[0]`.
func at(where string, path []string, parameter bool) string {
	if len(path) == 0 {
		return where
	}
	field := fieldPath(path)
	if parameter {
		return where + " at " + strings.TrimPrefix(field, ".")
	}
	return where + field
}

// fieldPath writes a JSON pointer as ".address.city" or ".items[0]".
func fieldPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		b.WriteString("." + p)
	}
	return b.String()
}

// reasonPrefixes rewrite kin-openapi's reasons to read after a field name:
// "number must be at most 100" becomes "must be at most 100".
var reasonPrefixes = []struct{ from, to, suffix string }{
	{"number must ", "must ", ""},
	{"value must ", "must ", ""},
	{"value is not ", "is not ", ""},
	{"Value is not nullable", "must not be null", ""},
	{"value doesn't ", "doesn't ", ""},
	{"value matches ", "matches ", ""},
	{"minimum string length is ", "must be at least ", " characters long"},
	{"maximum string length is ", "must be at most ", " characters long"},
	{"string doesn't match the regular expression ", "must match the regular expression ", ""},
	{"minimum number of items is ", "must have at least ", " items"},
	{"maximum number of items is ", "must have at most ", " items"},
	{"there must be at least ", "must have at least ", ""},
	{"there must be at most ", "must have at most ", ""},
}

func cleanReason(reason string) string {
	reason = firstLine(reason)
	for _, p := range reasonPrefixes {
		if rest, ok := strings.CutPrefix(reason, p.from); ok {
			return p.to + rest + p.suffix
		}
	}
	return reason
}

// parseMessage explains a value that could not be decoded: a parameter
// that is not of its type, or a body that is not valid for its media type.
func parseMessage(pe *openapi3filter.ParseError, body bool) string {
	if typ, ok := strings.CutPrefix(pe.Reason, "an invalid "); ok {
		return "must be " + article(typ) + " " + typ
	}
	if body {
		cause := pe.RootCause()
		if cause == nil {
			cause = pe
		}
		return "cannot be decoded: " + firstLine(cause.Error())
	}
	msg := pe.Reason
	if msg == "" && pe.Cause != nil {
		msg = pe.Cause.Error()
	}
	return firstLine(msg)
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
