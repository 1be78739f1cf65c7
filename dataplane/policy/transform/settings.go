package transform

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/config"
)

// Bounds and defaults of the body edits.
const (
	// DefaultMaxBodyBytes is the largest JSON body edited when json sets
	// no max_body_bytes.
	DefaultMaxBodyBytes = 1 << 20
	maxBodyBytesLimit   = 64 << 20
)

// HeaderSettings are the header edits both transforms have.
type HeaderSettings struct {
	// AddHeaders sets headers (replacing any of the same name) to a value
	// template.
	AddHeaders map[string]string `yaml:"add_headers"`
	// RemoveHeaders removes headers.
	RemoveHeaders []string `yaml:"remove_headers"`
	// RenameHeaders moves every value of a header (the key) to another
	// name (the value).
	RenameHeaders map[string]string `yaml:"rename_headers"`
}

// JSONSettings edit a JSON body by JSON Pointer (RFC 6901).
type JSONSettings struct {
	// Add sets the value at each pointer: YAML scalars, mappings and lists,
	// every string a template.
	Add map[string]any `yaml:"add"`
	// Remove deletes the value at each pointer.
	Remove []string `yaml:"remove"`
	// Rename moves the value at each pointer (the key) to another (the
	// value).
	Rename map[string]string `yaml:"rename"`
	// MaxBodyBytes is the largest body edited (default 1 MiB).
	MaxBodyBytes int `yaml:"max_body_bytes"`
}

// RequestSettings are request-transform's settings.
type RequestSettings struct {
	HeaderSettings `yaml:",inline"`
	// AddQuery sets query parameters (replacing any of the same name) to a
	// value template.
	AddQuery map[string]string `yaml:"add_query"`
	// RemoveQuery removes query parameters.
	RemoveQuery []string      `yaml:"remove_query"`
	JSON        *JSONSettings `yaml:"json"`
}

// ResponseSettings are response-transform's settings.
type ResponseSettings struct {
	HeaderSettings `yaml:",inline"`
	// StatusMap replaces a response status (the key) with another.
	StatusMap map[string]int `yaml:"status_map"`
	JSON      *JSONSettings  `yaml:"json"`
}

// Validate reports every setting that cannot be applied.
func (s *RequestSettings) Validate() []config.FieldError {
	_, errs := compileRequest(s)
	return errs
}

// Validate reports every setting that cannot be applied.
func (s *ResponseSettings) Validate() []config.FieldError {
	_, errs := compileResponse(s)
	return errs
}

// checkHeaders reports the header settings' problems, then compiles them.
func checkHeaders(s *HeaderSettings, request bool) (headerEdits, []config.FieldError) {
	var errs []config.FieldError
	fail := func(path string, err error) {
		errs = append(errs, config.FieldError{Path: path, Msg: err.Error()})
	}
	for name, value := range s.AddHeaders {
		path := "add_headers." + name
		if err := checkHeaderName(name, request); err != nil {
			fail(path, err)
		} else if _, err := compileTemplate(value); err != nil {
			fail(path, err)
		}
	}
	for i, name := range s.RemoveHeaders {
		if err := checkHeaderName(name, request); err != nil {
			fail(fmt.Sprintf("remove_headers[%d]", i), err)
		}
	}
	targets := map[string]string{}
	for _, from := range slices.Sorted(maps.Keys(s.RenameHeaders)) {
		to, path := s.RenameHeaders[from], "rename_headers."+from
		for _, name := range []string{from, to} {
			err := checkHeaderName(name, request)
			if err == nil && !request && strings.EqualFold(name, "Set-Cookie") {
				err = fmt.Errorf("Set-Cookie cannot be renamed: its lines are cookies, not a list")
			}
			if err != nil {
				fail(path, err)
			}
		}
		if strings.EqualFold(from, to) {
			fail(path, fmt.Errorf("renames %q to itself", from))
		}
		if other, dup := targets[strings.ToLower(to)]; dup {
			fail(path, fmt.Errorf("%q is already the new name of %q", to, other))
		}
		targets[strings.ToLower(to)] = from
	}
	if len(errs) > 0 {
		return headerEdits{}, errs
	}
	e, err := compileHeaders(s)
	if err != nil { // checked above
		return headerEdits{}, []config.FieldError{{Msg: err.Error()}}
	}
	return e, nil
}

// request is request-transform compiled.
type request struct {
	headers headerEdits
	query   queryEdits
	json    *jsonEdits // nil: no body edits
}

func compileRequest(s *RequestSettings) (*request, []config.FieldError) {
	r := &request{}
	var errs []config.FieldError
	r.headers, errs = checkHeaders(&s.HeaderSettings, true)
	queryOK := true
	for name, value := range s.AddQuery {
		path := "add_query." + name
		if name == "" {
			errs = append(errs, config.FieldError{Path: path, Msg: "a query parameter needs a name"})
			queryOK = false
		} else if _, err := compileTemplate(value); err != nil {
			errs = append(errs, config.FieldError{Path: path, Msg: err.Error()})
			queryOK = false
		}
	}
	for i, name := range s.RemoveQuery {
		if name == "" {
			errs = append(errs, config.FieldError{Path: fmt.Sprintf("remove_query[%d]", i), Msg: "a query parameter needs a name"})
			queryOK = false
		}
	}
	if queryOK {
		r.query, _ = compileQuery(s.AddQuery, s.RemoveQuery)
	}
	if s.JSON != nil {
		j, jerrs := compileJSON(s.JSON, DefaultMaxBodyBytes)
		errs = append(errs, jerrs...)
		r.json = j
	}
	return r, errs
}

// response is response-transform compiled.
type response struct {
	headers headerEdits
	status  map[int]int
	json    *jsonEdits
}

func compileResponse(s *ResponseSettings) (*response, []config.FieldError) {
	r := &response{}
	var errs []config.FieldError
	r.headers, errs = checkHeaders(&s.HeaderSettings, false)
	if len(s.StatusMap) > 0 {
		r.status = make(map[int]int, len(s.StatusMap))
	}
	for _, from := range slices.Sorted(maps.Keys(s.StatusMap)) {
		path, to := "status_map."+from, s.StatusMap[from]
		code, err := strconv.Atoi(from)
		switch {
		case err != nil || code < 200 || code > 599:
			errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf("%q is not a final status code (200 to 599)", from)})
		case to < 200 || to > 599:
			errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf("%d is not a final status code (200 to 599)", to)})
		case to == 204 || to == 304:
			errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf("%d is an answer without a body; the response's body would be lost", to)})
		default:
			r.status[code] = to
		}
	}
	if s.JSON != nil {
		j, jerrs := compileJSON(s.JSON, DefaultMaxBodyBytes)
		errs = append(errs, jerrs...)
		r.json = j
	}
	return r, errs
}
