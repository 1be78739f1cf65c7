package requestvalidation

import (
	"fmt"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/openapi"
)

// Defaults and bounds of the settings.
const (
	DefaultMaxBodyBytes = 1 << 20
	// maxBodyBytesLimit bounds max_body_bytes: bodies are held in memory
	// to be validated.
	maxBodyBytesLimit = 64 << 20
)

// Settings are the policy's settings.
type Settings struct {
	// Spec is the OpenAPI 3 document: a file (a relative path starts from
	// the gateway's working directory) or an http(s) URL.
	Spec string `yaml:"spec"`
	// Operation is the operation the route serves, by operationId or as
	// "METHOD /path". Empty: each request is matched to an operation by
	// its method and path.
	Operation string `yaml:"operation"`
	// Body validates request bodies against the operation's requestBody
	// (default true).
	Body *bool `yaml:"body"`
	// MaxBodyBytes is the largest body read to be validated; a larger one
	// gets 413. Default 1 MiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// BasePath is a prefix of request paths that the document's paths
	// leave out ("/v1"), removed before matching.
	BasePath string `yaml:"base_path"`
}

// Validate checks the settings and, for a spec file, that the document
// loads and names the operation, so that a wrong name is reported with its
// line in the configuration. A URL is only fetched when the configuration
// is applied.
func (s *Settings) Validate() []config.FieldError {
	var errs []config.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, config.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.MaxBodyBytes < 0:
		add("max_body_bytes", "must not be negative (0 or absent: %d)", DefaultMaxBodyBytes)
	case s.MaxBodyBytes > maxBodyBytesLimit:
		add("max_body_bytes", "must be at most %d (64 MiB): bodies are held in memory to be validated", maxBodyBytesLimit)
	}
	if b := s.BasePath; b != "" && (!strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/")) {
		add("base_path", "%q must start with \"/\" and not end with one, e.g. \"/v1\"", b)
	}
	if s.Spec == "" {
		add("spec", "spec is required: the OpenAPI document (file or URL) requests are validated against")
		return errs
	}
	if openapi.IsURL(s.Spec) {
		return errs
	}
	spec, err := openapi.Load(s.Spec)
	if err != nil {
		add("spec", "%v", err)
		return errs
	}
	if s.Operation != "" {
		if _, err := spec.Operation(s.Operation); err != nil {
			add("operation", "%v", err)
		}
	}
	return errs
}

func (s *Settings) body() bool { return s.Body == nil || *s.Body }

func (s *Settings) maxBodyBytes() int {
	if s.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return s.MaxBodyBytes
}
