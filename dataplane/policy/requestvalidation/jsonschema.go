package requestvalidation

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// jsonSchemaMessage describes the first failure found by the JSON Schema
// 2020-12 validator, which kin-openapi uses for OpenAPI 3.1 documents, in
// the words used for 3.0 ones.
func jsonSchemaMessage(where string, verr *jsonschema.ValidationError, parameter bool) string {
	leaf := verr
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	var reason string
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		reason = fmt.Sprintf("property %q is missing", k.Missing[0])
	case *kind.AdditionalProperties:
		reason = fmt.Sprintf("property %q is unsupported", k.Properties[0])
	case *kind.Type:
		types := make([]string, len(k.Want))
		for i, t := range k.Want {
			types[i] = t
			if t != "null" {
				types[i] = article(t) + " " + t
			}
		}
		reason = "must be " + strings.Join(types, " or ")
	case *kind.Enum:
		reason = "is not one of the allowed values " + jsonText(k.Want)
	case *kind.Const:
		reason = "must be " + jsonText(k.Want)
	case *kind.Pattern:
		reason = fmt.Sprintf("must match the regular expression %q", k.Want)
	case *kind.Format:
		reason = fmt.Sprintf("must be a valid %s", k.Want)
	case *kind.Minimum:
		reason = "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		reason = "must be at most " + k.Want.RatString()
	case *kind.ExclusiveMinimum:
		reason = "must be more than " + k.Want.RatString()
	case *kind.ExclusiveMaximum:
		reason = "must be less than " + k.Want.RatString()
	case *kind.MinLength:
		reason = fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		reason = fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.MinItems:
		reason = fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		reason = fmt.Sprintf("must have at most %d items", k.Want)
	default:
		// "at '/name': the validator's own words"
		reason = firstLine(leaf.Error())
		if _, rest, ok := strings.Cut(reason, "': "); ok {
			reason = rest
		}
	}
	return at(where, leaf.InstanceLocation, parameter) + ": " + reason
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
